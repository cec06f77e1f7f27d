package cron

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "cronjobs.json")

	st, err := Load(path)
	if err != nil || len(st.Runs) != 0 || st.Version != StateVersion {
		t.Fatalf("Load of a missing file = %+v, %v; want the empty state", st, err)
	}

	want := fired(cronJob(), at("10:01:00"), at("10:02:00"))
	if err := Save(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode = %v, want 0600 (run pods may carry secrets)", fi.Mode().Perm())
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.equal(want) {
		t.Errorf("loaded state differs from the saved one:\n%+v\n%+v", got, want)
	}
	// A restarted agentlet with the loaded state fires nothing twice.
	res := Plan(got, Input{Now: at("10:02:30"), CronJobs: want.cronJobSpecs()})
	if len(res.Started) != 0 {
		t.Errorf("after a restart the same times fired again: %v", runNames(res.Started))
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}

	for _, tc := range []struct{ name, content, want string }{
		{"not JSON", "{", "load cron state"},
		{"other version", `{"version":99}`, "unsupported version 99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := Load(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load error = %v, want %q", err, tc.want)
			}
			if len(st.Runs) != 0 || st.Version != StateVersion {
				t.Errorf("Load of a bad file = %+v, want the empty state", st)
			}
		})
	}
}

func TestSaveFailsInAFile(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(filepath.Join(blocker, "cronjobs.json"), State{}); err == nil || !strings.Contains(err.Error(), "save cron state") {
		t.Errorf("Save under a file = %v, want an error", err)
	}
}

// cronJobSpecs is the fixture CronJob for each CronJob of a state.
func (s State) cronJobSpecs() []nodeapi.CronJobSpec {
	var out []nodeapi.CronJobSpec
	for uid := range s.CronJobs {
		out = append(out, cronJob(func(c *nodeapi.CronJobSpec) { c.UID = uid }))
	}
	return out
}
