package playbooks

import (
	"fmt"

	"github.com/clusterctl/clusterctl/nodeapi"
)

// The init adapter: how services are installed, restarted and removed on a
// host. systemd on real hosts; labinit (the local lab's PID 1, which reads the
// same unit syntax from /etc/labinit) where there is no systemd.

// unitPath is where the agentlet service definition lives for init.
func unitPath(init string) string {
	if init == "labinit" {
		return LabinitUnitPath
	}
	return SystemdUnitPath
}

// labinitWaitPid waits until labinit reports a (new) main PID for name,
// different from the PID in $old.
func labinitWaitPid(name string) string {
	return fmt.Sprintf(`i=0; while [ $i -lt 150 ]; do n=$(cat /run/labinit/%[1]s.pid 2>/dev/null); if [ -n "$n" ] && [ "$n" != "$old" ]; then exit 0; fi; i=$((i+1)); sleep 0.1; done; echo "service %[1]s did not (re)start within 15s: $(cat /run/labinit/%[1]s.status 2>/dev/null)" >&2; exit 1`, name)
}

// labinitRestart asks labinit for an explicit restart of a service (no crash
// back-off), like `systemctl restart`.
func labinitRestart(name string) string {
	return fmt.Sprintf("touch /run/labinit/%s.restart && kill -HUP 1", name)
}

// serviceActivateCmd starts or restarts the agentlet service after its unit
// or binary changed.
func serviceActivateCmd(init string, unitChanged, binaryChanged bool) string {
	name := nodeapi.ServiceName
	switch init {
	case "systemd":
		cmd := "systemctl daemon-reload && systemctl enable " + name + " && "
		if unitChanged || binaryChanged {
			return cmd + "systemctl restart " + name
		}
		return cmd + "systemctl start " + name
	default: // labinit
		cmd := fmt.Sprintf("old=$(cat /run/labinit/%s.pid 2>/dev/null); ", name)
		switch {
		case unitChanged:
			cmd += "kill -HUP 1; "
		case binaryChanged:
			cmd += labinitRestart(name) + "; "
		}
		return cmd + labinitWaitPid(name)
	}
}

// serviceRunningCmd exits 0 when the agentlet service is running; with init
// "" it detects the init system itself.
func serviceRunningCmd(init string) string {
	systemd := "systemctl is-active --quiet " + nodeapi.ServiceName
	labinit := fmt.Sprintf(`p=$(cat /run/labinit/%s.pid 2>/dev/null) && kill -0 "$p"`, nodeapi.ServiceName)
	switch init {
	case "systemd":
		return systemd
	case "labinit":
		return labinit
	}
	return fmt.Sprintf("if [ -d /run/systemd/system ]; then %s; else %s; fi", systemd, labinit)
}

// containerdRestartCmd (re)starts containerd and waits until it answers.
func containerdRestartCmd(init string) string {
	var restart string
	switch init {
	case "systemd":
		restart = "systemctl enable containerd >/dev/null 2>&1; systemctl restart containerd"
	default:
		restart = labinitRestart("containerd")
	}
	return restart + fmt.Sprintf(`
i=0; while [ $i -lt 300 ]; do
  if timeout 2 ctr --address %s version >/dev/null 2>&1; then exit 0; fi
  i=$((i+1)); sleep 0.1
done
echo "containerd did not answer on %s within 30s" >&2; exit 1`, ContainerdSocket, ContainerdSocket)
}

// serviceRemoveCmd stops the agentlet service and removes its definition.
func serviceRemoveCmd(init string) string {
	name := nodeapi.ServiceName
	switch init {
	case "systemd":
		return fmt.Sprintf("systemctl disable --now %s >/dev/null 2>&1 || true; rm -f %s; systemctl daemon-reload", name, SystemdUnitPath)
	case "labinit":
		return fmt.Sprintf(`rm -f %[1]s; kill -HUP 1
i=0; while [ -f /run/labinit/%[2]s.pid ] && [ $i -lt 150 ]; do i=$((i+1)); sleep 0.1; done
if [ -f /run/labinit/%[2]s.pid ]; then echo "service %[2]s did not stop within 15s" >&2; exit 1; fi`, LabinitUnitPath, name)
	}
	return "true"
}
