// Package remote is clusterctl's SSH and SFTP edge: it dials a host, verifies
// its host key, runs commands as root and uploads files.
//
// # Connections
//
// Dial opens one SSH connection per host. Every command is a new session
// (channel) on that connection and the SFTP subsystem is one more channel,
// opened lazily on the first Upload, so a playbook that runs many commands and
// uploads a binary costs a single TCP connection and handshake. A Client is safe
// for concurrent use; OpenSSH allows 10 sessions per connection by default
// (MaxSessions).
//
// Dialing honours the context and Config.ConnectTimeout for the TCP connect and
// for the whole SSH handshake (banner, key exchange, authentication), so a frozen
// host that accepts TCP but never speaks fails after ConnectTimeout instead of
// hanging. With jump hosts every hop gets its own ConnectTimeout.
//
// # Host keys
//
// Host keys are always verified against Config.KnownHostsFile, plus any files
// named by UserKnownHostsFile in the ssh_config file (read only). The usual
// OpenSSH forms work: hashed host names and "[host]:port" for ports other than
// 22. When keys are known for a host, the handshake only offers the algorithms
// of those keys, so a server that also has a key of another type cannot cause a
// false "key changed" report. An unknown key is an *UnknownHostKeyError unless
// Config.AcceptNewHostKeys is set, in which case it is appended to
// Config.KnownHostsFile under an exclusive file lock. A changed key is always a
// *HostKeyMismatchError and the connection is abandoned before authentication.
// Jump hosts are verified the same way.
//
// # Precedence
//
// Values are chosen as OpenSSH does: explicit values > ssh_config > defaults.
//
//   - User of a target: Target.User > Config.User > ssh_config User > "root".
//   - Port of a target: Target.Port > Config.Port > ssh_config Port > 22.
//   - User and port of a jump host: the ProxyJump entry > ssh_config for the
//     jump host's name > Config.User (user only) > "root" and 22. Config.Port is
//     the cluster hosts' port and does not apply to jump hosts, as ssh -p does
//     not apply to -J hosts.
//   - Address: ssh_config HostName for the name (with %h expanded) > the name.
//   - Identity files: Config.IdentityFiles first, then ssh_config IdentityFile
//     entries for the host (missing ones are skipped, like OpenSSH does for
//     files that come from a config file), then ssh-agent keys if
//     Config.UseAgent is set and SSH_AUTH_SOCK is.
//   - ProxyJump: Config.ProxyJump > ssh_config ProxyJump of the target ("none"
//     disables). ProxyJump entries of jump hosts themselves are not followed.
//   - Known hosts: Config.KnownHostsFile is always read and is the only file
//     written. ssh_config UserKnownHostsFile files are read in addition.
//
// Other ssh_config keywords are ignored; in particular StrictHostKeyChecking
// cannot turn verification off. ProxyCommand is not supported and is reported
// as an error when it would be used.
//
// # Commands
//
// Run and Stream execute a command through the login user's shell, which must
// be a POSIX shell (sh, bash, dash, ksh, zsh). When the login user is not root
// (Config.Sudo = SudoAuto) or always (SudoAlways), the command is wrapped as
// sudo -- sh -c 'CMD', so it must be POSIX sh. The first such command per
// Client checks `sudo -n true`; if sudo wants a password, Config.SudoPassword
// is called once and the password is fed to sudo -S on stdin ahead of the
// command's own input.
//
// When a command's context ends, Run returns at once with the context's
// error and the command's process group is killed. OpenSSH ignores the SSH
// "signal" request for root logins, so each command announces its shell's PID
// on the first line of stderr (which Run strips) and the group is killed with
// kill(1) from a second session, through sudo if the command used it.
//
// Upload writes as the login user, over SFTP: upload to a temporary path
// (TempPath) and move the file into place with Run.
package remote
