package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// BenchmarkUp measures `clusterctl up` wall time on N lab hosts, cold (after
// `reset`: agentlet uploaded, containerd reconfigured and restarted) and on a
// re-run (nothing to change), beside the floor measured in the same run: a
// plain x/crypto/ssh program that dials every host in parallel and runs `true`.
// It also reports agentlet's idle RSS.
func BenchmarkUp(b *testing.B) {
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("hosts=%d", n), func(b *testing.B) {
			l := newLab(b, n)
			var cold, rerun, floor time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if i > 0 {
					mustOK(b, "reset", "--yes", "-i", l.inv)
				}
				b.StartTimer()
				start := time.Now()
				mustOK(b, "up", "-i", l.inv)
				cold += time.Since(start)
				start = time.Now()
				mustOK(b, "up", "-i", l.inv)
				rerun += time.Since(start)
				b.StopTimer()
				floor += sshFloor(b, l.inv)
				b.StartTimer()
			}
			per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
			b.ReportMetric(per(cold), "cold-ms")
			b.ReportMetric(per(rerun), "rerun-ms")
			b.ReportMetric(per(floor), "floor-ms")
			b.ReportMetric(float64(rerun)/float64(floor), "rerun/floor")
			b.ReportMetric(agentletRSS(b, l)/1024, "agentlet-rss-MiB")
		})
	}
}

// sshFloor dials every inventory host in parallel and runs `true`.
func sshFloor(tb testing.TB, inv string) time.Duration {
	tb.Helper()
	data, err := os.ReadFile(inv)
	if err != nil {
		tb.Fatal(err)
	}
	field := func(k string) string {
		m := regexp.MustCompile(`(?m)^\s*` + k + `:\s*(\S+)`).FindSubmatch(data)
		if m == nil {
			tb.Fatalf("no %s in %s", k, inv)
		}
		return string(m[1])
	}
	keyPEM, err := os.ReadFile(field("identityFile"))
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		tb.Fatal(err)
	}
	hostKeys, err := knownhosts.New(field("knownHosts"))
	if err != nil {
		tb.Fatal(err)
	}
	var addrs []string
	for _, m := range regexp.MustCompile(`(?m)^\s*address:\s*(\S+)`).FindAllSubmatch(data, -1) {
		addrs = append(addrs, string(m[1]))
	}
	cfg := &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeys, Timeout: 5 * time.Second}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(addrs))
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ssh.Dial("tcp", net.JoinHostPort(a, "22"), cfg)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			s, err := c.NewSession()
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			errs[i] = s.Run("true")
		}()
	}
	wg.Wait()
	d := time.Since(start)
	for _, err := range errs {
		if err != nil {
			tb.Fatalf("ssh floor: %v", err)
		}
	}
	return d
}

// agentletRSS is the mean VmRSS (KiB) of the agentlet daemons.
func agentletRSS(tb testing.TB, l *lab) float64 {
	out := l.exec(tb, "h1", `grep VmRSS /proc/$(cat /run/agentlet/agentlet.pid)/status`)
	f := strings.Fields(out)
	if len(f) < 2 {
		tb.Fatalf("VmRSS: %q", out)
	}
	kb, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		tb.Fatal(err)
	}
	return kb
}

// BenchmarkAgentletSize reports the stripped agentlet sizes shipped inside clusterctl.
func BenchmarkAgentletSize(b *testing.B) {
	for _, arch := range []string{"amd64", "arm64"} {
		st, err := os.Stat(filepath.Join("..", "agentlet", "dist", "bin", "agentlet-linux-"+arch))
		if err != nil {
			b.Skipf("skipping: agentlet not built (make build): %v", err)
		}
		b.ReportMetric(float64(st.Size())/(1<<20), arch+"-MiB")
	}
}
