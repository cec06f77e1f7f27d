// Package lab is clusterctl's local multi-host lab (`clusterctl lab`): N
// isolated "hosts" on one Linux machine, each reachable over SSH like a real
// server, so the demo, the integration tests, the benchmarks and CI run
// against real sshd, containerd, CNI and iptables without VMs. Root is needed.
//
// # Topology
//
// The shared L2 "switch" is a bridge br0 in its own network namespace
// ccl-NAME-sw. The workstation (the CLI, the tests) reaches it from the root
// network namespace through a veth (ccl-NAME, or cclh<hash> for long names)
// holding the subnet's .1 address; its peer up0 is a bridge port. Host hI has
// its own network namespace ccl-NAME-hI whose eth0 (subnet .10+I) is the peer
// of bridge port pI. Hosts have lo, ip_forward=1, bridge-nf-call-iptables=1,
// an on-link route for the service CIDR 10.96.0.0/12 and NO default route:
// nothing leaves the machine. Nothing is added to the root network namespace
// but the workstation veth; its ip_forward is left alone.
//
// # Hosts
//
// A host is started as
//
//	setsid -f nsenter --net=/run/netns/ccl-NAME-hI -- unshare --mount --uts --ipc
//	  --pid --fork --kill-child --propagation private EXE lab __init ...
//
// (Go cannot setns into a mount namespace from a multithreaded process, so the
// namespaces are entered by exec; setsid -f double-forks so the machine's init
// reaps unshare). [HostInit] then runs as the host's PID 1: it records its
// root-namespace PID (hosts/hI/pid1.json, with start time and PID-namespace
// inode so a recycled PID is never signalled), joins the host's cgroups,
// builds the host's file system view and becomes labinit (below).
//
// Cgroups: one directory ccl-NAME-hI at the root of EVERY mounted cgroup
// hierarchy (v1 controllers, named hierarchies and cgroup2, found in
// /proc/self/mountinfo; cpuset.cpus/mems are copied from the parent). The same
// absolute path in every hierarchy lets containerd's cgroupfs driver use
// cgroup_parent=/ccl-NAME-hI for the host's pods. The v1 freezer (or
// cgroup.freeze) of that directory freezes the whole host.
//
// File system view of a host (everything per host lives in
// STATE/hosts/hI, the host's "disk"; mounts exist only in the host's mount
// namespace, never in the root one):
//
//	/proc                fresh procfs of the host's PID namespace
//	/sys                 fresh sysfs of the host's netns, with the cgroup tree moved back
//	/run                 tmpfs (fresh on every boot); inherited /run/netns copies dropped
//	/dev/shm             tmpfs
//	/etc /opt /var/lib   overlayfs, lower = the machine's dir, upper = ovl/{etc,opt,varlib}
//	/var/lib/containerd  bind of var-lib-containerd (plain ext4: the overlayfs
//	                     snapshotter cannot live on overlayfs)
//	/usr/local/bin /var/log /root (0700) /tmp (1777)   binds
//	/var/tmp (1777)      bind, after /tmp: its source may be below /var/tmp
//	STATE                an empty read-only tmpfs hides the lab's state (keys,
//	                     other hosts' disks) if the binds did not already
//
// Everything else (/usr, /bin, ...) is the machine's and shared: software
// inside hosts must not write there.
//
// # labinit
//
// PID 1 of every host is labinit, a tiny supervisor standing in for systemd:
//
//   - Services are /etc/labinit/NAME.service files in systemd unit syntax. Of
//     [Service] it honours ExecStart= (argv split on whitespace, "double" and
//     'single' quotes, $VAR/${VAR} expanded from Environment=, $$ for a
//     dollar), ExecStartPre= (each run to completion first; a leading "-"
//     ignores its failure), Restart=always|on-failure|no (default no),
//     RestartSec= (default 1s) and Environment=KEY=VALUE (may repeat). Other
//     keys and sections are ignored. Services start with PATH set, in their own
//     session, cwd /, stdin /dev/null; stdout and stderr are appended to
//     /var/log/NAME.log.
//   - On start and on SIGHUP it rescans /etc/labinit: services not running
//     (and not waiting in back-off) are started, services whose file was
//     removed are stopped (SIGTERM, SIGKILL after 10s), services whose file
//     changed are stopped and started with the new content.
//   - Restart policy: exits are counted in streaks; a streak ends once the
//     service has stayed up 10s. The first restart of a streak is immediate,
//     so `kill -TERM $(cat /run/labinit/NAME.pid)` restarts a Restart=always
//     service within milliseconds; further restarts in the streak wait
//     RestartSec, 2x, 4x ... at most 30s (crash loops). on-failure restarts
//     on a non-zero exit or a signal other than HUP, INT, TERM and PIPE (as
//     systemd: a TERM-ed on-failure service stays stopped). Stopping signals
//     only the main process (systemd's KillMode=process, so containerd's
//     shims survive a containerd restart).
//   - An explicit restart, like `systemctl restart NAME`: create
//     /run/labinit/NAME.restart and send SIGHUP; the service is stopped and
//     started again at once, without crash back-off. `clusterctl up` restarts
//     containerd and agentlet this way.
//   - /run/labinit/pid holds "1" (its presence is how `clusterctl up` detects
//     labinit); /run/labinit/NAME.pid holds a running service's main PID and
//     is removed when it stops; /run/labinit/NAME.status is one line of JSON
//     {"state":"running|stopped|failed|backoff","pid":N,"restarts":N,"lastExit":"..."}
//     written atomically on every change (it appears once the service first
//     started or failed, and is removed with the unit file).
//   - SIGTERM to labinit stops all services and exits (the kernel then kills
//     what is left of the host).
//
// The lab writes /etc/labinit/sshd.service and /etc/labinit/containerd.service,
// /etc/ssh/sshd_config (ListenAddress = host IP, the host's own ed25519 key,
// key auth only) and an initial distro-like /etc/containerd/config.toml into
// the host's /etc overlay once, when the host is created; later boots reuse
// them, so `clusterctl up` may replace them. No CNI config is written.
//
// # Registry
//
// Unless told otherwise (Options.Registry; `lab up --registry=false`), a lab
// whose machine has Debian's docker-registry also runs a registry, the
// distribution v2 server, for images pushed from the workstation and pulled
// by the hosts: plain HTTP on port 5000 at the subnet's .2 address, in its
// own network namespace ccl-NAME-reg whose eth0 is the peer of bridge port
// preg. It is booted like a host, as PID 1 of fresh mount, UTS, IPC and PID
// namespaces (`lab __init --registry`), recorded in STATE/registry/pid1.json
// with the same identity checks, and is labinit supervising one service,
// registry (docker-registry serve), with Restart=always. Its mount namespace
// has a fresh /proc, a tmpfs /run and STATE/registry bound at /run/registry:
// config.yml, data/ (blobs and manifests), labinit/registry.service and
// log/registry.log. `lab up` lists it in the inventory under
// cluster.registries as insecure, so `clusterctl up` configures every
// host's containerd for it; `lab status` shows it; `lab down` kills it and
// removes its netns and directory.
//
// # State
//
// STATE (default /var/tmp/clusterctl-lab/NAME; never below /etc, /opt,
// /var/lib, /tmp, /run, /var/log, /root or /usr/local/bin, which hosts
// replace before their own mounts are made) holds lab.json (subnet, hosts,
// cgroup hierarchies, inventory path, partitions, registry), the workstation
// key id_ed25519[.pub], known_hosts with every host's real key, hosts/hI and
// registry/.
// `lab down` removes every process, namespace, link, cgroup and file the lab
// made, the state directory and the inventory it wrote.
package lab
