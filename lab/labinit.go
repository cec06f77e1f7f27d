package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// labinit's fixed timings (see the package documentation).
const (
	stableUptime  = 10 * time.Second // a run this long resets the back-off
	backoffCap    = 30 * time.Second
	backoffFloor  = 100 * time.Millisecond // for RestartSec=0
	stopTimeout   = 10 * time.Second
	labinitPIDKey = "pid"
)

// Service states as written to NAME.status.
const (
	stateRunning = "running"
	stateStopped = "stopped"
	stateFailed  = "failed"
	stateBackoff = "backoff"
)

// labinitConfig says where labinit finds units and writes its state. Inside
// a host: /etc/labinit, /run/labinit, /var/log.
type labinitConfig struct {
	UnitDir     string
	RunDir      string
	LogDir      string
	Env         []string // base environment of every service
	StopTimeout time.Duration
	Log         *log.Logger
}

func hostLabinitConfig(logger *log.Logger) labinitConfig {
	return labinitConfig{
		UnitDir:     "/etc/labinit",
		RunDir:      "/run/labinit",
		LogDir:      "/var/log",
		Env:         []string{"PATH=" + servicePath},
		StopTimeout: stopTimeout,
		Log:         logger,
	}
}

// serviceStatus is NAME.status.
type serviceStatus struct {
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	LastExit string `json:"lastExit"`
}

type phase int

const (
	phaseIdle phase = iota // no process; nextStart may be set (back-off)
	phasePre               // ExecStartPre[preIdx] runs as pid
	phaseMain              // the main process runs as pid
)

type service struct {
	name      string
	data      []byte
	unit      unitFile
	unitErr   error
	phase     phase
	pid       int
	preIdx    int
	started   time.Time // of the main process
	nextStart time.Time // zero: not scheduled
	stopping  bool
	killAt    time.Time // zero: no SIGKILL scheduled
	restarts  int
	streak    int // quick exits in a row
	state     string
	lastExit  string
	removed   bool   // unit file gone: forget the service once stopped
	pending   []byte // new unit content to start with once stopped
}

type supervisor struct {
	cfg      labinitConfig
	services map[string]*service
	byPID    map[int]*service
	shutdown bool
}

var unitNameRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)

// runLabinit supervises the services in cfg.UnitDir until SIGTERM or SIGINT,
// reaping every child (it is a PID 1). It only returns once all services
// have stopped.
func runLabinit(cfg labinitConfig) error {
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = stopTimeout
	}
	s := &supervisor{cfg: cfg, services: map[string]*service{}, byPID: map[int]*service{}}
	if err := os.MkdirAll(cfg.RunDir, 0o755); err != nil {
		return fmt.Errorf("create labinit run dir: %w", err)
	}
	// Notify before anything is started so no SIGCHLD is missed.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGHUP, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(sigs)
	if err := writeFileAtomic(filepath.Join(cfg.RunDir, labinitPIDKey), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	cfg.Log.Printf("labinit: started, units in %s", cfg.UnitDir)
	s.rescan(time.Now())
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		s.reap(now)
		s.fireDue(now)
		if s.shutdown && len(s.byPID) == 0 {
			cfg.Log.Printf("labinit: all services stopped, exiting")
			return nil
		}
		wait := time.Hour
		if d, ok := s.nextDeadline(); ok {
			wait = max(time.Until(d), 0)
		}
		timer.Reset(wait)
		select {
		case sig := <-sigs:
			switch sig {
			case unix.SIGHUP:
				cfg.Log.Printf("labinit: SIGHUP, rescanning %s", cfg.UnitDir)
				s.rescan(time.Now())
			case unix.SIGTERM, unix.SIGINT:
				cfg.Log.Printf("labinit: %v, stopping all services", sig)
				s.stopAll(time.Now())
			}
		case <-timer.C:
		}
	}
}

func (s *supervisor) reap(now time.Time) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if svc := s.byPID[pid]; svc != nil {
			delete(s.byPID, pid)
			s.exited(svc, ws, now)
		}
	}
}

func describeExit(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	default:
		return "unknown wait status " + strconv.Itoa(int(ws))
	}
}

// cleanExit is systemd's notion: exit 0 or SIGHUP, SIGINT, SIGTERM, SIGPIPE.
func cleanExit(ws unix.WaitStatus) bool {
	if ws.Exited() {
		return ws.ExitStatus() == 0
	}
	if ws.Signaled() {
		switch ws.Signal() {
		case unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGPIPE:
			return true
		}
	}
	return false
}

func (s *supervisor) exited(svc *service, ws unix.WaitStatus, now time.Time) {
	desc := describeExit(ws)
	wasMain := svc.phase == phaseMain
	wasPre := svc.phase == phasePre
	svc.pid, svc.phase = 0, phaseIdle
	if wasMain {
		os.Remove(s.path(svc.name + ".pid"))
		s.cfg.Log.Printf("%s: main process exited: %s", svc.name, desc)
	}
	if svc.stopping {
		s.stopped(svc, desc, now)
		return
	}
	if wasPre {
		cmd := svc.unit.ExecStartPre[svc.preIdx]
		if (ws.Exited() && ws.ExitStatus() == 0) || cmd.IgnoreFailure {
			svc.preIdx++
			s.startNext(svc, now)
			return
		}
		s.cfg.Log.Printf("%s: ExecStartPre %s failed: %s", svc.name, cmd.Path, desc)
		s.afterExit(svc, "ExecStartPre "+desc, false, 0, now)
		return
	}
	s.afterExit(svc, desc, cleanExit(ws), now.Sub(svc.started), now)
}

// backoff is the delay before restart number streak+1 of a quick-exit run.
func backoff(streak int, base time.Duration) time.Duration {
	if streak <= 0 {
		return 0
	}
	d := max(base, backoffFloor)
	for i := 1; i < streak && d < backoffCap; i++ {
		d *= 2
	}
	return min(d, backoffCap)
}

// afterExit applies the restart policy after the service's process (or a
// start attempt) ended.
func (s *supervisor) afterExit(svc *service, lastExit string, clean bool, uptime time.Duration, now time.Time) {
	svc.lastExit = lastExit
	if uptime >= stableUptime {
		svc.streak = 0
	}
	restart := svc.unit.Restart == restartAlways || svc.unit.Restart == restartOnFailure && !clean
	if !restart || s.shutdown {
		svc.state = stateFailed
		if clean {
			svc.state = stateStopped
		}
		s.writeStatus(svc)
		return
	}
	delay := backoff(svc.streak, svc.unit.RestartSec)
	svc.streak++
	svc.restarts++
	if delay == 0 {
		s.start(svc, now)
		return
	}
	s.cfg.Log.Printf("%s: restarting in %s", svc.name, delay)
	svc.state, svc.nextStart = stateBackoff, now.Add(delay)
	s.writeStatus(svc)
}

func (s *supervisor) start(svc *service, now time.Time) {
	svc.nextStart = time.Time{}
	if svc.unitErr != nil {
		svc.state, svc.lastExit = stateFailed, "invalid unit: "+svc.unitErr.Error()
		s.cfg.Log.Printf("%s: %s", svc.name, svc.lastExit)
		s.writeStatus(svc)
		return
	}
	svc.preIdx = 0
	s.startNext(svc, now)
}

// startNext starts the next ExecStartPre command or, after the last, the
// main process.
func (s *supervisor) startNext(svc *service, now time.Time) {
	env := serviceEnv(s.cfg.Env, svc.unit.Environment)
	for svc.preIdx < len(svc.unit.ExecStartPre) {
		cmd := svc.unit.ExecStartPre[svc.preIdx]
		pid, err := s.spawn(svc.name, cmd, env)
		if err == nil {
			svc.phase, svc.pid = phasePre, pid
			s.byPID[pid] = svc
			return
		}
		if !cmd.IgnoreFailure {
			s.cfg.Log.Printf("%s: ExecStartPre: %v", svc.name, err)
			s.afterExit(svc, "ExecStartPre: "+err.Error(), false, 0, now)
			return
		}
		svc.preIdx++
	}
	pid, err := s.spawn(svc.name, svc.unit.ExecStart, env)
	if err != nil {
		s.cfg.Log.Printf("%s: start: %v", svc.name, err)
		s.afterExit(svc, "start: "+err.Error(), false, 0, now)
		return
	}
	svc.phase, svc.pid, svc.started, svc.state = phaseMain, pid, now, stateRunning
	s.byPID[pid] = svc
	if err := writeFileAtomic(s.path(svc.name+".pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		s.cfg.Log.Printf("%s: %v", svc.name, err)
	}
	s.writeStatus(svc)
	s.cfg.Log.Printf("%s: started pid %d", svc.name, pid)
}

// spawn starts cmd in its own session with stdout and stderr appended to
// the service's log. It does not wait: reap collects every exit.
func (s *supervisor) spawn(name string, cmd execCommand, env []string) (int, error) {
	argv := make([]string, len(cmd.Argv))
	for i, a := range cmd.Argv {
		argv[i] = expandVars(a, env)
	}
	path, err := lookPath(expandVars(cmd.Path, env), env)
	if err != nil {
		return 0, err
	}
	logf, err := os.OpenFile(filepath.Join(s.cfg.LogDir, name+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer null.Close()
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []uintptr{null.Fd(), logf.Fd(), logf.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", path, err)
	}
	return pid, nil
}

// lookPath finds file in env's PATH unless it contains a slash.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := ""
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, file)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %s: not found in PATH", file)
}

// stop asks the service to stop: SIGTERM now, SIGKILL after StopTimeout.
// stopped runs once it has.
func (s *supervisor) stop(svc *service, now time.Time) {
	svc.nextStart = time.Time{}
	if svc.pid == 0 {
		s.stopped(svc, "", now)
		return
	}
	if svc.stopping {
		return
	}
	svc.stopping = true
	svc.killAt = now.Add(s.cfg.StopTimeout)
	unix.Kill(svc.pid, unix.SIGTERM)
	s.cfg.Log.Printf("%s: stopping pid %d", svc.name, svc.pid)
}

func (s *supervisor) stopped(svc *service, desc string, now time.Time) {
	svc.stopping, svc.killAt = false, time.Time{}
	if desc != "" {
		svc.lastExit = desc
	}
	switch {
	case svc.removed:
		delete(s.services, svc.name)
		os.Remove(s.path(svc.name + ".pid"))
		os.Remove(s.path(svc.name + ".status"))
		s.cfg.Log.Printf("%s: stopped and removed", svc.name)
	case svc.pending != nil && !s.shutdown:
		s.apply(svc, svc.pending)
		svc.restarts++
		s.cfg.Log.Printf("%s: unit changed, starting again", svc.name)
		s.start(svc, now)
	default:
		svc.state = stateStopped
		s.writeStatus(svc)
	}
}

func (s *supervisor) apply(svc *service, data []byte) {
	svc.data, svc.pending = data, nil
	svc.unit, svc.unitErr = parseUnit(data)
	svc.streak = 0
}

// rescan brings the services in line with the unit files.
func (s *supervisor) rescan(now time.Time) {
	if s.shutdown {
		return
	}
	files := map[string][]byte{}
	ents, err := os.ReadDir(s.cfg.UnitDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.cfg.Log.Printf("labinit: read units: %v", err)
		return
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".service")
		if !ok || !unitNameRE.MatchString(name) || e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.cfg.UnitDir, e.Name()))
		if err != nil {
			s.cfg.Log.Printf("labinit: read unit: %v", err)
			continue
		}
		files[name] = data
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		data := files[name]
		svc := s.services[name]
		if svc == nil {
			svc = &service{name: name}
			s.services[name] = svc
			s.apply(svc, data)
			s.start(svc, now)
			continue
		}
		svc.removed = false
		restart := s.takeRestartRequest(name)
		switch {
		case restart && svc.pid != 0 && !svc.stopping:
			// An explicit restart (like `systemctl restart`): stop, then
			// start again at once, with no crash back-off.
			svc.streak, svc.pending = 0, data
			s.stop(svc, now)
		case restart && svc.pid == 0 && !svc.stopping:
			svc.streak = 0
			s.apply(svc, data)
			s.start(svc, now)
		case svc.stopping:
			svc.pending = data // start again (with this content) once stopped
		case !bytes.Equal(svc.data, data) && svc.pid != 0:
			svc.pending = data
			s.stop(svc, now)
		case !bytes.Equal(svc.data, data):
			s.apply(svc, data)
			s.start(svc, now)
		case svc.pid == 0 && svc.nextStart.IsZero():
			s.start(svc, now) // not running and not waiting to restart
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.services)) {
		if svc := s.services[name]; files[name] == nil && !svc.removed {
			svc.removed, svc.pending = true, nil
			s.stop(svc, now)
		}
	}
}

// takeRestartRequest consumes RUNDIR/NAME.restart, the file that asks for an
// explicit restart of service NAME at the next rescan (SIGHUP).
func (s *supervisor) takeRestartRequest(name string) bool {
	return os.Remove(s.path(name+".restart")) == nil
}

func (s *supervisor) stopAll(now time.Time) {
	s.shutdown = true
	for _, name := range slices.Sorted(maps.Keys(s.services)) {
		svc := s.services[name]
		svc.pending = nil
		s.stop(svc, now)
	}
}

func (s *supervisor) fireDue(now time.Time) {
	for _, name := range slices.Sorted(maps.Keys(s.services)) {
		svc := s.services[name]
		if svc.pid == 0 && !svc.nextStart.IsZero() && !now.Before(svc.nextStart) {
			s.start(svc, now)
		}
		if svc.stopping && !svc.killAt.IsZero() && !now.Before(svc.killAt) {
			s.cfg.Log.Printf("%s: still running after %s, sending SIGKILL", svc.name, s.cfg.StopTimeout)
			unix.Kill(svc.pid, unix.SIGKILL)
			svc.killAt = time.Time{}
		}
	}
}

func (s *supervisor) nextDeadline() (time.Time, bool) {
	var next time.Time
	for _, svc := range s.services {
		for _, t := range []time.Time{svc.nextStart, svc.killAt} {
			if !t.IsZero() && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
	}
	return next, !next.IsZero()
}

func (s *supervisor) path(name string) string { return filepath.Join(s.cfg.RunDir, name) }

func (s *supervisor) writeStatus(svc *service) {
	st := serviceStatus{State: svc.state, Restarts: svc.restarts, LastExit: svc.lastExit}
	if svc.phase == phaseMain {
		st.PID = svc.pid
	}
	data, _ := json.Marshal(st)
	if err := writeFileAtomic(s.path(svc.name+".status"), append(data, '\n'), 0o644); err != nil {
		s.cfg.Log.Printf("%s: %v", svc.name, err)
	}
}
