package inventory

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Environment of the helper process (TestHelperProcess).
const (
	helperEnvMode = "INVENTORY_TEST_HELPER" // "hold" or "bump"
	helperEnvPath = "INVENTORY_TEST_PATH"
	helperEnvN    = "INVENTORY_TEST_N"
)

// TestHelperProcess is not a test: other tests run the test binary with it
// to get a second process contending for the lock.
//
//	hold: take the lock, print "locked", hold it until stdin is closed.
//	bump: run N Updates that each bump the generation.
func TestHelperProcess(t *testing.T) {
	mode, path := os.Getenv(helperEnvMode), os.Getenv(helperEnvPath)
	if mode == "" {
		t.Skip("helper process for the lock tests")
	}
	switch mode {
	case "hold":
		unlock, err := Lock(context.Background(), path, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("locked")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // returns when stdin closes
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
	case "bump":
		n, _ := strconv.Atoi(os.Getenv(helperEnvN))
		for range n {
			if err := Update(context.Background(), path, 30*time.Second, bump); err != nil {
				t.Fatal(err)
			}
		}
	default:
		t.Fatalf("unknown helper mode %q", mode)
	}
}

// helper starts the test binary as a helper process.
func helper(t *testing.T, mode, path string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnvMode+"="+mode, helperEnvPath+"="+path, helperEnvN+"="+strconv.Itoa(n))
	return cmd
}

// holdInOtherProcess starts a helper that holds the lock and returns it
// with the function that makes it let go and exit.
func holdInOtherProcess(t *testing.T, path string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := helper(t, "hold", path, 0)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not take the lock: %q, %v", line, err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("helper: %v", err)
			}
		})
	}
	t.Cleanup(release)
	return cmd, release
}

func bump(inv *Inventory) error {
	inv.BumpGeneration()
	return nil
}

func TestLockExclusiveInProcess(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	ctx := t.Context()
	unlock, err := Lock(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(ctx, path, 0)
	var lerr *LockedError
	if !errors.As(err, &lerr) {
		t.Fatalf("second Lock: error = %v, want *LockedError", err)
	}
	if lerr.LockFile != path+".lock" || lerr.Holder == nil || lerr.Holder.PID != os.Getpid() {
		t.Errorf("LockedError = %+v, holder %+v; want lock file %s held by pid %d", lerr, lerr.Holder, path+".lock", os.Getpid())
	}
	want := fmt.Sprintf("lock inventory: %s.lock is held by pid %d (", path, os.Getpid())
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; gave up after 0s") {
		t.Errorf("error = %q, want it to start with %q", err, want)
	}

	// A waiter gets the lock once it is released.
	done := make(chan error, 1)
	go func() {
		unlock2, err := Lock(ctx, path, 10*time.Second)
		if err == nil {
			err = unlock2()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting Lock: %v", err)
	}
	if data, err := os.ReadFile(path + ".lock"); err != nil || len(data) != 0 {
		t.Errorf("lock file after unlock = %q, %v; want it empty", data, err)
	}
}

func TestLockWaitsAndGivesUp(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	unlock, err := Lock(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	start := time.Now()
	_, err = Lock(t.Context(), path, 300*time.Millisecond)
	var lerr *LockedError
	if !errors.As(err, &lerr) || lerr.Waited != 300*time.Millisecond {
		t.Fatalf("error = %v, want *LockedError after 300ms", err)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("gave up after %s, before the wait ran out", elapsed)
	}

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := Lock(ctx, path, -1); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a canceled context: error = %v, want context.Canceled", err)
	}
}

func TestLockHeldByOtherProcess(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	cmd, release := holdInOtherProcess(t, path)

	_, err := Lock(t.Context(), path, 100*time.Millisecond)
	var lerr *LockedError
	if !errors.As(err, &lerr) {
		t.Fatalf("error = %v, want *LockedError", err)
	}
	if lerr.Holder == nil || lerr.Holder.PID != cmd.Process.Pid {
		t.Errorf("holder = %+v, want pid %d", lerr.Holder, cmd.Process.Pid)
	}
	if host, _ := os.Hostname(); lerr.Holder != nil && lerr.Holder.Host != host {
		t.Errorf("holder host = %q, want %q", lerr.Holder.Host, host)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("held by pid %d", cmd.Process.Pid)) {
		t.Errorf("error %q does not name the holder", err)
	}
	// Update fails the same way and leaves the file alone.
	before := mustRead(t, path)
	if err := Update(t.Context(), path, 0, bump); !errors.As(err, &lerr) {
		t.Errorf("Update: error = %v, want *LockedError", err)
	}
	if string(before) != string(mustRead(t, path)) {
		t.Error("Update without the lock changed the file")
	}

	release()
	unlock, err := Lock(t.Context(), path, 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the other process let go: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	cmd := helper(t, "hold", path, 0)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not take the lock: %q, %v", line, err)
	}
	// Kill our own helper by its pid: the kernel drops its flock, and the
	// stale holder record left in the lock file does not matter.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	unlock, err := Lock(t.Context(), path, 5*time.Second)
	if err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	if h := readHolder(path + ".lock"); h == nil || h.PID != os.Getpid() {
		t.Errorf("holder record = %+v, want this process", h)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateConcurrent runs read-modify-write cycles from goroutines and
// other processes at once; none may be lost.
func TestUpdateConcurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := copyTestdata(t, "valid-minimal.yaml")
	const goroutines, processes, each = 4, 2, 10

	var cmds []*exec.Cmd
	for range processes {
		cmd := helper(t, "bump", path, each)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := Update(t.Context(), path, 30*time.Second, bump); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	close(errs)
	for err := range errs {
		t.Errorf("Update: %v", err)
	}
	if got, want := mustLoad(t, path).State.Generation, int64((goroutines+processes)*each); got != want {
		t.Errorf("generation = %d after %d updates: updates were lost", got, want)
	}
}

func TestUpdateFnError(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	before := mustRead(t, path)
	boom := errors.New("boom")
	err := Update(t.Context(), path, 0, func(inv *Inventory) error {
		inv.BumpGeneration()
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want boom", err)
	}
	if string(mustRead(t, path)) != string(before) {
		t.Error("Update saved despite fn failing")
	}
	// The lock was released.
	unlock, err := Lock(t.Context(), path, 0)
	if err != nil {
		t.Fatalf("lock still held after a failed Update: %v", err)
	}
	_ = unlock()
}

func TestUpdateSavesState(t *testing.T) {
	path := copyTestdata(t, "valid-minimal.yaml")
	err := Update(t.Context(), path, 0, func(inv *Inventory) error {
		inv.BumpGeneration()
		inv.SetHostState("h1", HostState{PodCIDR: pfx("10.244.0.0/24")})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	inv := mustLoad(t, path)
	if inv.State.Generation != 1 || inv.HostState("h1").PodCIDR != pfx("10.244.0.0/24") {
		t.Errorf("state after Update = %+v", inv.State)
	}
}
