// Command sshfloor is the SSH floor of clusterctl's host benchmarks: it reads
// an inventory, dials every host in parallel with the same SSH settings as
// clusterctl (package remote, host keys verified against the inventory's
// known_hosts, key auth), runs one command (`true`) on each, closes, and
// prints how long that took. No clusterctl command can reach every host in
// less, so benchmarks report clusterctl's time as a multiple of this floor,
// measured in the same run.
//
//	go run ./tools/sshfloor -i cluster.yaml
//	sshfloor: 50 hosts, dial + "true" in 412.3ms
//
// -parallel limits how many hosts are worked on at once (0, the default: all
// of them); -n repeats the whole round and prints one line per round. With
// -warm the connections are held: every host is dialed once (one line), then
// each of the -n rounds runs the command over the held connections, the floor
// of a `clusterctl watch` tick:
//
//	sshfloor: 50 hosts, dial in 380.1ms
//	sshfloor: 50 hosts, "true" over held connections in 61.2ms
//
// It exits 1 if any host failed, naming each one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/clusterctl/clusterctl/inventory"
	"github.com/clusterctl/clusterctl/remote"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sshfloor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	invPath := fs.String("i", inventory.DefaultFile, "inventory file")
	parallel := fs.Int("parallel", 0, "hosts worked on at once (0: all)")
	cmd := fs.String("cmd", "true", "command run on every host")
	rounds := fs.Int("n", 1, "rounds (each dials every host anew, unless -warm)")
	warm := fs.Bool("warm", false, "dial once and run the rounds over the held connections")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *rounds < 1 || *parallel < 0 {
		fmt.Fprintln(stderr, "usage: sshfloor [-i inventory] [-parallel N] [-cmd CMD] [-n ROUNDS] [-warm]")
		return 2
	}
	inv, err := inventory.Load(*invPath)
	if err != nil {
		fmt.Fprintf(stderr, "sshfloor: %v\n", err)
		return 1
	}
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sshfloor: %v\n", err)
		return 1
	}
	round := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	if !*warm {
		for range *rounds {
			d, err := Floor(ctx, inv, *parallel, *cmd)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "sshfloor: %d hosts, dial + %s in %s\n", len(inv.Hosts), strconv.Quote(*cmd), round(d))
		}
		return 0
	}
	start := time.Now()
	clients, err := Connect(ctx, inv, *parallel)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "sshfloor: %d hosts, dial in %s\n", len(inv.Hosts), round(time.Since(start)))
	for range *rounds {
		d, err := RunAll(ctx, clients, *parallel, *cmd)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "sshfloor: %d hosts, %s over held connections in %s\n", len(inv.Hosts), strconv.Quote(*cmd), round(d))
	}
	return 0
}

// Floor dials every host of inv (at most parallel at once; 0 means all),
// runs cmd on each over its connection, closes it, and returns the wall time
// of the whole round. Any failure fails the round; the error names every
// host that failed.
func Floor(ctx context.Context, inv *inventory.Inventory, parallel int, cmd string) (time.Duration, error) {
	start := time.Now()
	err := forEach(len(inv.Hosts), parallel, func(i int) error {
		c, err := dial(ctx, inv, inv.Hosts[i])
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Run(ctx, cmd, nil) // its error names the host
		return err
	})
	return time.Since(start), err
}

// Connect dials every host of inv (at most parallel at once; 0 means all)
// and returns the clients in inventory order; the caller closes them, also
// on error (failed hosts are nil).
func Connect(ctx context.Context, inv *inventory.Inventory, parallel int) ([]*remote.Client, error) {
	clients := make([]*remote.Client, len(inv.Hosts))
	err := forEach(len(inv.Hosts), parallel, func(i int) error {
		c, err := dial(ctx, inv, inv.Hosts[i])
		clients[i] = c
		return err
	})
	var ok []*remote.Client
	for _, c := range clients {
		if c != nil {
			ok = append(ok, c)
		}
	}
	if err != nil {
		return ok, err
	}
	return clients, nil
}

// RunAll runs cmd once on every client in parallel (at most parallel at
// once; 0 means all) and returns the wall time of the round.
func RunAll(ctx context.Context, clients []*remote.Client, parallel int, cmd string) (time.Duration, error) {
	start := time.Now()
	err := forEach(len(clients), parallel, func(i int) error {
		_, err := clients[i].Run(ctx, cmd, nil)
		return err
	})
	return time.Since(start), err
}

// forEach calls f(0) ... f(n-1), at most parallel at once (0: all), and
// joins their errors.
func forEach(n, parallel int, f func(i int) error) error {
	if parallel <= 0 || parallel > n {
		parallel = n
	}
	sem := make(chan struct{}, max(parallel, 1))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dial connects to h with the settings clusterctl's commands use
// (cli/common.go dialer, without the interactive sudo password prompt; a
// sudo that asks for a password fails the host).
func dial(ctx context.Context, inv *inventory.Inventory, h inventory.Host) (*remote.Client, error) {
	s := inv.HostSSH(h)
	cfg := remote.Config{
		UseAgent:       s.UseAgent,
		KnownHostsFile: s.KnownHosts,
		ProxyJump:      s.ProxyJump,
		Sudo:           remote.SudoAuto,
		ConnectTimeout: s.ConnectTimeout,
		KeepAlive:      5 * time.Second, // as clusterctl: a dead host is noticed
		Getenv:         os.Getenv,
	}
	if s.UserSet {
		cfg.User = s.User
	}
	if s.PortSet {
		cfg.Port = s.Port
	}
	switch s.SudoMode {
	case inventory.SudoAlways:
		cfg.Sudo = remote.SudoAlways
	case inventory.SudoNever:
		cfg.Sudo = remote.SudoNever
	}
	if s.IdentityFile != "" {
		cfg.IdentityFiles = []string{s.IdentityFile}
	}
	if s.SSHConfig != "" {
		if _, err := os.Stat(s.SSHConfig); err == nil {
			cfg.SSHConfigFile = s.SSHConfig
		}
	}
	c, err := remote.Dial(ctx, remote.Target{Name: h.Name, Address: s.Address}, cfg)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", h.Name, err)
	}
	return c, nil
}
