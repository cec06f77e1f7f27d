package iptables

import (
	"context"
	"strings"
	"sync"
)

// Fake stands in for Exec in tests. Saves are answered from SaveOutput;
// Check and Insert share a set of rules; restored payloads are kept in
// Restored. The *Err fields inject errors. Calls records every call in order
// ("restore", "save filter", "check filter FORWARD -j X", "insert ...").
type Fake struct {
	mu sync.Mutex

	SaveOutput map[string][]byte // by table
	Rules      map[string]bool   // "table chain args..." present for Check
	Restored   [][]byte

	// OnRestore, when set, runs after a successful Restore (e.g. to update
	// SaveOutput the way the kernel would).
	OnRestore func(payload []byte)

	RestoreErr error
	SaveErr    error
	CheckErr   error
	InsertErr  error

	Calls []string
}

// NewFake returns a fake with empty tables.
func NewFake() *Fake {
	return &Fake{SaveOutput: map[string][]byte{}, Rules: map[string]bool{}}
}

func ruleKey(table, chain string, rule []string) string {
	return table + " " + chain + " " + strings.Join(rule, " ")
}

// Restore records the payload.
func (f *Fake) Restore(_ context.Context, payload []byte) error {
	f.mu.Lock()
	f.Calls = append(f.Calls, "restore")
	if f.RestoreErr != nil {
		defer f.mu.Unlock()
		return f.RestoreErr
	}
	f.Restored = append(f.Restored, append([]byte(nil), payload...))
	hook := f.OnRestore
	f.mu.Unlock()
	if hook != nil {
		hook(payload)
	}
	return nil
}

// Save returns SaveOutput[table].
func (f *Fake) Save(_ context.Context, table string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, "save "+table)
	if f.SaveErr != nil {
		return nil, f.SaveErr
	}
	return f.SaveOutput[table], nil
}

// SetSave replaces the save output of a table.
func (f *Fake) SetSave(table string, out []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.SaveOutput[table] = out
}

// Check reports whether Insert added the rule (or Rules holds it).
func (f *Fake) Check(_ context.Context, table, chain string, rule []string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := ruleKey(table, chain, rule)
	f.Calls = append(f.Calls, "check "+k)
	if f.CheckErr != nil {
		return false, f.CheckErr
	}
	return f.Rules[k], nil
}

// Insert adds the rule.
func (f *Fake) Insert(_ context.Context, table, chain string, rule []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := ruleKey(table, chain, rule)
	f.Calls = append(f.Calls, "insert "+k)
	if f.InsertErr != nil {
		return f.InsertErr
	}
	f.Rules[k] = true
	return nil
}

// TakeCalls returns the recorded calls and forgets them.
func (f *Fake) TakeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.Calls
	f.Calls = nil
	return c
}
