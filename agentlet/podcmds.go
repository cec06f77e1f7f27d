package agentlet

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/clusterctl/clusterctl/agentlet/cri"
	"github.com/clusterctl/clusterctl/agentlet/podlogs"
	"github.com/clusterctl/clusterctl/agentlet/pods"
	"github.com/clusterctl/clusterctl/agentlet/probe"
	"github.com/clusterctl/clusterctl/nodeapi"
	"github.com/clusterctl/clusterctl/version"
)

// Exit codes of `agentlet exec` besides the command's own.
const (
	ExitExecCannotRun = 126 // the command could not be started in the container
	ExitExecNotFound  = 127 // the command was not found in the container
)

// ExitCodeError carries the exit code of a command run in a container;
// Main exits with it and prints nothing.
type ExitCodeError struct{ Code int }

func (e *ExitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.Code) }

// podOptions are the daemon's pod flags.
type podOptions struct {
	cgroupDriver string
	cgroupRoot   string
	backoff      pods.BackoffPolicy
	gc           pods.ImageGCPolicy
	parallel     int
}

func podFlags(fs *flag.FlagSet) *podOptions {
	o := &podOptions{backoff: pods.DefaultBackoff(), gc: pods.DefaultImageGC()}
	fs.StringVar(&o.cgroupDriver, "cgroup-driver", "auto", "cgroup driver of the runtime: auto (systemd if /run/systemd/system exists), cgroupfs or systemd")
	fs.StringVar(&o.cgroupRoot, "cgroup-root", "", "cgroupfs: the cgroup pods go under (kubepods/pod<uid> below it); empty: the one agentlet runs in")
	fs.DurationVar(&o.backoff.Base, "restart-backoff", o.backoff.Base, "first crash-loop back-off, doubling up to --restart-backoff-max")
	fs.DurationVar(&o.backoff.Max, "restart-backoff-max", o.backoff.Max, "crash-loop back-off cap")
	fs.IntVar(&o.gc.HighPercent, "image-gc-high-threshold", o.gc.HighPercent, "image file system usage (percent) that starts image garbage collection")
	fs.IntVar(&o.gc.LowPercent, "image-gc-low-threshold", o.gc.LowPercent, "image file system usage (percent) image garbage collection frees down to")
	fs.DurationVar(&o.gc.MinAge, "image-minimum-age", o.gc.MinAge, "unused images younger than this (since agentlet first saw them) are not collected")
	fs.IntVar(&o.parallel, "max-parallel-pods", 8, "pods worked on at once")
	return o
}

// manager builds the pod manager of the daemon.
func (o *podOptions) manager(paths Paths, rt *cri.Client, log *Logger, wake func()) (*pods.Manager, error) {
	cg := pods.Cgroups{Driver: o.cgroupDriver, Root: o.cgroupRoot}
	switch o.cgroupDriver {
	case "auto":
		cg.Driver = pods.DetectDriver("/run/systemd/system")
	case pods.DriverCgroupfs, pods.DriverSystemd:
	default:
		return nil, &usageError{fmt.Errorf("--cgroup-driver %q: want auto, cgroupfs or systemd", o.cgroupDriver)}
	}
	if cg.Driver == pods.DriverCgroupfs && cg.Root == "" {
		data, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return nil, fmt.Errorf("read own cgroup: %w", err)
		}
		cg.Root = pods.SelfCgroup(data)
	}
	if o.backoff.Base <= 0 || o.backoff.Max < o.backoff.Base {
		return nil, &usageError{fmt.Errorf("--restart-backoff %s, --restart-backoff-max %s: want 0 < base ≤ max", o.backoff.Base, o.backoff.Max)}
	}
	if o.gc.LowPercent < 0 || o.gc.LowPercent > o.gc.HighPercent || o.gc.HighPercent > 100 {
		return nil, &usageError{fmt.Errorf("image gc thresholds %d/%d: want 0 ≤ low ≤ high ≤ 100", o.gc.LowPercent, o.gc.HighPercent)}
	}
	log.Info("pod runtime", "cgroupDriver", cg.Driver, "cgroupRoot", cg.Root, "restartBackoff", o.backoff.Base)
	handlers := probe.Handlers{Exec: rt, UserAgent: "agentlet/" + version.Version}
	return pods.NewManager(pods.Config{
		Runtime:     rt,
		ProbeRunner: handlers,
		Hooks:       handlers,
		Mounter:     pods.HostMounter{},
		Layout:      pods.Layout{PodsDir: paths.PodsDir(), LogsDir: paths.PodLogsDir()},
		Cgroups:     cg,
		RemoveCgroup: func(ctx context.Context, cgroup string) error {
			return pods.RemoveCgroup(ctx, "/sys/fs/cgroup", cgroup)
		},
		Backoff:     o.backoff,
		ImageGC:     o.gc,
		PauseImage:  pauseRef,
		MaxParallel: o.parallel,
		Now:         time.Now,
		Log:         log,
		Wake:        wake,
	}), nil
}

// parsePod parses flags around a NAMESPACE/NAME argument (flags may come
// before or after it) and returns it with what follows (after "--").
func parsePod(fs *flag.FlagSet, args []string) (ns, name string, rest []string, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", "", nil, err
		}
		return "", "", nil, &usageError{err}
	}
	if fs.NArg() == 0 {
		return "", "", nil, &usageError{errors.New("want NAMESPACE/NAME")}
	}
	pod := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", "", nil, &usageError{err}
	}
	ns, name, ok := strings.Cut(pod, "/")
	if !ok {
		ns, name = "default", pod
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", nil, &usageError{fmt.Errorf("pod %q: want NAMESPACE/NAME", pod)}
	}
	return ns, name, fs.Args(), nil
}

// podOnNode finds a pod of the held spec.
func podOnNode(paths Paths, ns, name string) (*nodeapi.PodSpec, error) {
	spec, _, err := loadSpec(paths.SpecPath())
	if err != nil {
		return nil, err
	}
	var names []string
	if spec != nil {
		for i := range spec.Pods {
			p := &spec.Pods[i]
			if p.Namespace == ns && p.Name == name {
				return p, nil
			}
			names = append(names, p.Key())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("pod %s/%s not found: this node runs no pods", ns, name)
	}
	return nil, fmt.Errorf("pod %s/%s not found on this node; pods here: %s", ns, name, strings.Join(names, ", "))
}

// containerNames lists a pod's containers for messages: "a, b, init: i".
func containerNames(p *nodeapi.PodSpec) string {
	var names []string
	for _, c := range p.Containers {
		names = append(names, c.Name)
	}
	s := strings.Join(names, ", ")
	if len(p.InitContainers) > 0 {
		var in []string
		for _, c := range p.InitContainers {
			in = append(in, c.Name)
		}
		s += "; init: " + strings.Join(in, ", ")
	}
	return s
}

// pickContainer resolves -c: the named container (regular or init) or,
// when empty, the first one (with a note when there are several).
func pickContainer(env Env, p *nodeapi.PodSpec, name string) (string, error) {
	if name == "" {
		name = p.Containers[0].Name
		if len(p.Containers)+len(p.InitContainers) > 1 {
			fmt.Fprintf(env.Err, "Defaulted container %q out of: %s\n", name, containerNames(p))
		}
		return name, nil
	}
	for _, c := range append(append([]nodeapi.ContainerSpec{}, p.Containers...), p.InitContainers...) {
		if c.Name == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("container %q not found in pod %s; containers: %s", name, p.Key(), containerNames(p))
}

func logsCmd(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "logs")
	root := rootFlag(fs)
	var container string
	var follow, previous, timestamps bool
	fs.StringVar(&container, "c", "", "container name (default: the first)")
	fs.StringVar(&container, "container", "", "same as -c")
	fs.BoolVar(&follow, "f", false, "follow the log until the container exits")
	fs.BoolVar(&follow, "follow", false, "same as -f")
	fs.BoolVar(&previous, "p", false, "the previous (terminated) instance's log")
	fs.BoolVar(&previous, "previous", false, "same as -p")
	tail := fs.Int("tail", -1, "only the last N lines (-1: all)")
	since := fs.Duration("since", 0, "only lines newer than this, e.g. 5m")
	fs.BoolVar(&timestamps, "timestamps", false, "prefix each line with its RFC3339Nano time")
	ns, name, rest, err := parsePod(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &usageError{fmt.Errorf("unexpected arguments %q", rest)}
	}
	paths := Paths{Root: *root}
	p, err := podOnNode(paths, ns, name)
	if err != nil {
		return err
	}
	container, err = pickContainer(env, p, container)
	if err != nil {
		return err
	}
	dir := filepath.Join(paths.PodLogsDir(), ns+"_"+name+"_"+p.UID, container)
	inst, err := podlogs.Instances(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list logs of %s/%s: %w", p.Key(), container, err)
	}
	if len(inst) == 0 {
		return fmt.Errorf("container %q in pod %s has not started yet%s", container, p.Key(), waitingNote(paths, p, container))
	}
	n := inst[len(inst)-1]
	if previous {
		if len(inst) < 2 {
			return fmt.Errorf("previous terminated container %q in pod %s not found", container, p.Key())
		}
		n = inst[len(inst)-2]
	}
	opts := podlogs.Options{Tail: *tail, Timestamps: timestamps}
	if *since > 0 {
		opts.Since = time.Now().Add(-*since)
	}
	var done func() bool
	if follow && !previous {
		done = followDone(paths, p, container, dir, n)
	}
	return podlogs.Print(ctx, env.Out, podlogs.File(dir, n), opts, done, 200*time.Millisecond)
}

// waitingNote explains from the published status why a container has no log.
func waitingNote(paths Paths, p *nodeapi.PodSpec, container string) string {
	if cs := publishedContainer(paths, p, container); cs != nil && cs.State.Waiting != nil {
		return fmt.Sprintf(" (waiting: %s %s)", cs.State.Waiting.Reason, cs.State.Waiting.Message)
	}
	return ""
}

// publishedContainer is a container's status in the daemon's last published status.
func publishedContainer(paths Paths, p *nodeapi.PodSpec, container string) *nodeapi.ContainerStatus {
	data, err := os.ReadFile(paths.StatusPath())
	if err != nil {
		return nil
	}
	st, err := nodeapi.DecodeNodeStatus(data)
	if err != nil {
		return nil
	}
	for _, ps := range st.Pods {
		if ps.UID != p.UID {
			continue
		}
		for _, cs := range append(append([]nodeapi.ContainerStatus{}, ps.ContainerStatuses...), ps.InitContainerStatuses...) {
			if cs.Name == container {
				return &cs
			}
		}
	}
	return nil
}

// followDone decides when `logs -f` stops: the instance whose log is
// followed is no longer the running one (the published status says so, or
// a newer log file appeared). While the status says nothing (no daemon)
// it follows until killed.
func followDone(paths Paths, p *nodeapi.PodSpec, container, dir string, n int) func() bool {
	var last time.Time
	return func() bool {
		if _, err := os.Stat(podlogs.File(dir, n+1)); err == nil {
			return true
		}
		if time.Since(last) < time.Second {
			return false
		}
		last = time.Now()
		cs := publishedContainer(paths, p, container)
		if cs == nil {
			return false
		}
		return cs.State.Running == nil || int(cs.RestartCount) != n
	}
}

func execCmd(ctx context.Context, env Env, args []string) error {
	fs := newFlags(env, "exec")
	root := rootFlag(fs)
	endpoint := fs.String("runtime-endpoint", cri.DefaultEndpoint, "CRI endpoint of the container runtime (unix socket)")
	ctrPath := fs.String("ctr", "ctr", "containerd's ctr tool, used for -i and -t")
	var container string
	var stdin, tty bool
	fs.StringVar(&container, "c", "", "container name (default: the first)")
	fs.StringVar(&container, "container", "", "same as -c")
	fs.BoolVar(&stdin, "i", false, "pass stdin to the command")
	fs.BoolVar(&stdin, "stdin", false, "same as -i")
	fs.BoolVar(&tty, "t", false, "allocate a terminal")
	fs.BoolVar(&tty, "tty", false, "same as -t")
	ns, name, cmd, err := parsePod(fs, args)
	if err != nil {
		return err
	}
	if len(cmd) == 0 {
		return &usageError{errors.New("want NAMESPACE/NAME -- COMMAND [ARGS...]")}
	}
	socket, err := cri.SocketPath(*endpoint)
	if err != nil {
		return &usageError{err}
	}
	client, err := cri.Dial(*endpoint)
	if err != nil {
		return err
	}
	defer client.Close()
	id, err := runningContainer(ctx, env, client, Paths{Root: *root}, ns, name, container)
	if err != nil {
		return err
	}
	if stdin || tty {
		return ctrExec(ctx, env, *ctrPath, socket, id, cmd, tty)
	}
	res, err := client.ExecSync(ctx, id, cmd, 0)
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
			fmt.Fprintf(env.Err, "agentlet exec: %v\n", err)
			return &ExitCodeError{Code: ExitExecNotFound}
		case strings.Contains(msg, "failed to exec in container"), strings.Contains(msg, "OCI runtime exec failed"):
			fmt.Fprintf(env.Err, "agentlet exec: %v\n", err)
			return &ExitCodeError{Code: ExitExecCannotRun}
		}
		return err
	}
	if _, err := env.Out.Write(res.Stdout); err != nil {
		return err
	}
	if _, err := env.Err.Write(res.Stderr); err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return &ExitCodeError{Code: int(res.ExitCode)}
	}
	return nil
}

// runningContainer finds the running instance of a pod's container through
// CRI (the published status may be a tick old).
func runningContainer(ctx context.Context, env Env, rt *cri.Client, paths Paths, ns, name, container string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sbs, err := rt.ListPodSandbox(cctx)
	if err != nil {
		return "", err
	}
	var sb *cri.Sandbox
	var others []string
	for i := range sbs {
		s := &sbs[i]
		if s.Labels[nodeapi.LabelPodUID] == "" || s.State != cri.SandboxReady {
			continue
		}
		if s.Namespace == ns && s.Name == name {
			if sb == nil || s.Attempt > sb.Attempt {
				sb = s
			}
			continue
		}
		others = append(others, s.Namespace+"/"+s.Name)
	}
	if sb == nil {
		sort.Strings(others)
		if len(others) == 0 {
			return "", fmt.Errorf("pod %s/%s is not running on this node (no pods run here)", ns, name)
		}
		return "", fmt.Errorf("pod %s/%s is not running on this node; running pods: %s", ns, name, strings.Join(others, ", "))
	}
	ctrs, err := rt.ListContainers(cctx)
	if err != nil {
		return "", err
	}
	byName := map[string]*cri.Container{}
	for i := range ctrs {
		c := &ctrs[i]
		if c.SandboxID != sb.ID {
			continue
		}
		if cur := byName[c.Name]; cur == nil || c.Attempt > cur.Attempt {
			byName[c.Name] = c
		}
	}
	if container == "" {
		// The spec's order when it is readable, else by name.
		if p, err := podOnNode(paths, ns, name); err == nil && p.UID == sb.UID {
			if container, err = pickContainer(env, p, ""); err != nil {
				return "", err
			}
		} else {
			names := sortedNames(byName)
			if len(names) == 0 {
				return "", fmt.Errorf("pod %s/%s has no containers yet", ns, name)
			}
			container = names[0]
		}
	}
	c := byName[container]
	if c == nil {
		return "", fmt.Errorf("container %q not found in pod %s/%s; containers: %s", container, ns, name, strings.Join(sortedNames(byName), ", "))
	}
	if c.State != cri.ContainerRunning {
		return "", fmt.Errorf("container %q of pod %s/%s is not running (%s)", container, ns, name, c.State)
	}
	return c.ID, nil
}

func sortedNames(m map[string]*cri.Container) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ctrExec runs cmd interactively with `ctr tasks exec` (CRI's streaming
// Exec needs a streaming client; ctr ships with containerd) and returns
// the command's exit code.
func ctrExec(ctx context.Context, env Env, ctr, socket, id string, cmd []string, tty bool) error {
	path, err := exec.LookPath(ctr)
	if err != nil {
		return fmt.Errorf("exec: %s not found (it ships with containerd): %w", ctr, err)
	}
	args := []string{"--address", socket, "-n", "k8s.io", "tasks", "exec",
		"--exec-id", fmt.Sprintf("agentlet-exec-%d-%d", os.Getpid(), time.Now().UnixNano())}
	if tty {
		args = append(args, "-t")
	}
	args = append(append(args, id), cmd...)
	c := exec.CommandContext(ctx, path, args...)
	c.Stdin, c.Stdout, c.Stderr = env.In, env.Out, env.Err
	err = c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return &ExitCodeError{Code: ee.ExitCode()}
	}
	if err != nil {
		return fmt.Errorf("exec with %s: %w", ctr, err)
	}
	return nil
}
