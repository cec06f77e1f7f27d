package agentlet

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/clusterctl/clusterctl/agentlet/iptables"
	"github.com/clusterctl/clusterctl/agentlet/netfilter"
)

// TeardownTables are the tables teardown cleans.
func TeardownTables() []string { return []string{netfilter.TableFilter, netfilter.TableNAT} }

// TeardownResult says what teardown removed.
type TeardownResult struct {
	Payload        []byte // the iptables-restore payload that was loaded, nil for none
	IptablesAbsent bool   // iptables is not installed: nothing to remove
}

// Teardown removes every chain we own (nodeapi.ChainPrefix) from tables,
// with every rule that jumps to one of them, in one iptables-restore
// --noflush payload, then removes the run directory. Foreign rules and chains
// are never touched. Running it again finds nothing and changes nothing.
func Teardown(ctx context.Context, ipt Iptables, paths Paths, tables []string) (TeardownResult, error) {
	var res TeardownResult
	var saved bytes.Buffer
	for _, t := range tables {
		out, err := ipt.Save(ctx, t)
		if iptables.NotInstalled(err) {
			res.IptablesAbsent = true
			break
		}
		if err != nil {
			return res, fmt.Errorf("teardown: %w", err)
		}
		saved.Write(out)
	}
	if !res.IptablesAbsent {
		parsed, err := netfilter.ParseSave(saved.Bytes())
		if err != nil {
			return res, fmt.Errorf("teardown: %w", err)
		}
		if payload := netfilter.Teardown(parsed); payload != nil {
			if err := ipt.Restore(ctx, payload); err != nil {
				return res, fmt.Errorf("teardown: %w", err)
			}
			res.Payload = payload
		}
	}
	if err := os.RemoveAll(paths.RunDir()); err != nil {
		return res, fmt.Errorf("teardown: remove run directory: %w", err)
	}
	return res, nil
}
