package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseUnit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    unitFile
		wantErr string
	}{
		{
			name: "defaults",
			in:   "[Service]\nExecStart=/usr/sbin/sshd -D\n",
			want: unitFile{ExecStart: execCommand{Path: "/usr/sbin/sshd", Argv: []string{"/usr/sbin/sshd", "-D"}}, Restart: "no", RestartSec: time.Second},
		},
		{
			name: "everything",
			in: `# comment
[Unit]
Description=ignored = really
ExecStart=/not/this

[Service]
; another comment
Type=simple
ExecStartPre=-/bin/false
ExecStartPre=/bin/mkdir -p "/run/a b"
ExecStart=/bin/sh -c 'echo "$X"' \
  tail
Restart=on-failure
RestartSec=500ms
Environment=A=1 "B=two words"
Environment=C=3

[Install]
WantedBy=multi-user.target
`,
			want: unitFile{
				ExecStart: execCommand{Path: "/bin/sh", Argv: []string{"/bin/sh", "-c", `echo "$X"`, "tail"}},
				ExecStartPre: []execCommand{
					{Path: "/bin/false", Argv: []string{"/bin/false"}, IgnoreFailure: true},
					{Path: "/bin/mkdir", Argv: []string{"/bin/mkdir", "-p", "/run/a b"}},
				},
				Restart:     "on-failure",
				RestartSec:  500 * time.Millisecond,
				Environment: []string{"A=1", "B=two words", "C=3"},
			},
		},
		{
			name: "empty assignment resets, last ExecStart wins, @ sets argv0",
			in:   "[Service]\nExecStartPre=/a\nExecStartPre=\nEnvironment=A=1\nEnvironment=\nExecStart=/x\nExecStart=@/bin/sleep napper 5\nRestart=always\nRestartSec=2\n",
			want: unitFile{ExecStart: execCommand{Path: "/bin/sleep", Argv: []string{"napper", "5"}}, Restart: "always", RestartSec: 2 * time.Second},
		},
		{name: "no ExecStart", in: "[Service]\nRestart=always\n", wantErr: "no ExecStart="},
		{name: "bad restart", in: "[Service]\nExecStart=/x\nRestart=sometimes\n", wantErr: "line 3: Restart: unsupported Restart=sometimes"},
		{name: "bad quote", in: "[Service]\nExecStart=/x \"open\n", wantErr: "line 2: ExecStart: unterminated \" quote"},
		{name: "bad line", in: "[Service]\nExecStart\n", wantErr: "line 2: want Key=Value"},
		{name: "bad env", in: "[Service]\nExecStart=/x\nEnvironment=novalue\n", wantErr: "bad Environment assignment"},
		{name: "bad timespan", in: "[Service]\nExecStart=/x\nRestartSec=soon\n", wantErr: "bad time span"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUnit([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseUnit error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseUnit: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseUnit mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`a "b c" d`, []string{"a", "b c", "d"}},
		{`"a \"q\" \\" 'x "y"'`, []string{`a "q" \`, `x "y"`}},
		{`pre"mid dle"post`, []string{"premid dlepost"}},
		{`""`, []string{""}},
		{`a\ b`, []string{"a b"}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil {
			t.Fatalf("splitWords(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("splitWords(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseTimespan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "5", want: 5 * time.Second},
		{in: "0.25", want: 250 * time.Millisecond},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "1min 30s", want: 90 * time.Second},
		{in: "2h", want: 2 * time.Hour},
		{in: "1s500ms", want: 1500 * time.Millisecond},
		{in: "10us", want: 10 * time.Microsecond},
		{in: "", bad: true},
		{in: "5 parsecs", bad: true},
		{in: "-1", bad: true},
	}
	for _, tt := range tests {
		got, err := parseTimespan(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseTimespan(%q) = %v, want error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandVarsAndEnv(t *testing.T) {
	env := serviceEnv([]string{"PATH=/bin", "HOME=/root"}, []string{"A=1", "PATH=/usr/bin", "B=x y"})
	if diff := cmp.Diff([]string{"PATH=/usr/bin", "HOME=/root", "A=1", "B=x y"}, env); diff != "" {
		t.Errorf("serviceEnv mismatch (-want +got):\n%s", diff)
	}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$A", "1"},
		{"${B}!", "x y!"},
		{"$A$B", "1x y"},
		{"cost $$5", "cost $5"},
		{"$UNSET-", "-"},
		{"trailing $", "trailing $"},
		{"${open", "${open"},
		{"$1", "$1"},
	}
	for _, tt := range tests {
		if got := expandVars(tt.in, env); got != tt.want {
			t.Errorf("expandVars(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	base := time.Second
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for streak, w := range want {
		if got := backoff(streak, base); got != w {
			t.Errorf("backoff(%d, %v) = %v, want %v", streak, base, got, w)
		}
	}
	if got := backoff(1, 0); got != backoffFloor {
		t.Errorf("backoff(1, 0) = %v, want the floor %v", got, backoffFloor)
	}
	if got := backoff(1000, time.Hour); got != backoffCap {
		t.Errorf("backoff(1000, 1h) = %v, want the cap %v", got, backoffCap)
	}
}
