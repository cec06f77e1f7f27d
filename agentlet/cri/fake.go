package cri

import (
	"context"
	"sync"
	"time"
)

// Fake is an in-memory runtime for tests. Set the fields to shape its answers,
// the *Err fields to inject errors; Calls records every method called, in order
// ("Version", "Status", "ImageStatus <ref>", "RunPodSandbox <ns>/<name>", ...,
// "Close"). Its pod half (fakepods.go) keeps sandboxes and containers in memory.
type Fake struct {
	mu sync.Mutex

	VersionInfo Version
	StatusInfo  Status
	Images      map[string]Image // by reference; a missing key means absent

	VersionErr     error
	StatusErr      error
	ImageStatusErr error
	CloseErr       error

	// Pod half: error injection and behaviour.
	RunPodSandboxErr error
	ListErr          error            // ListPodSandbox and ListContainers
	StatsErr         error            // ListContainerStats
	CreateErr        map[string]error // by container name
	StartErr         map[string]error // by container name
	PullErr          map[string]error // by image reference
	StopExitCode     int32            // exit code of stopped containers (0: 143)
	FsInfo           []FsUsage
	// ExecFunc answers ExecSync for running containers (nil: exit 0).
	ExecFunc func(id string, cmd []string, timeout time.Duration) (ExecResult, error)
	// Clock stamps created/started/finished times (nil: time.Now).
	Clock func() time.Time

	Calls []string

	podState *fakePods
}

// NewFake returns a healthy fake containerd with no images.
func NewFake() *Fake {
	return &Fake{
		VersionInfo: Version{RuntimeName: "containerd", RuntimeVersion: "1.6.20~ds1", RuntimeAPIVersion: "v1"},
		StatusInfo: Status{Conditions: []Condition{
			{Type: ConditionRuntimeReady, Status: true},
			{Type: ConditionNetworkReady, Status: true},
		}},
		Images: map[string]Image{},
	}
}

func (f *Fake) record(call string) {
	f.Calls = append(f.Calls, call)
}

// Version implements the runtime's Version call.
func (f *Fake) Version(context.Context) (Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Version")
	if f.VersionErr != nil {
		return Version{}, f.VersionErr
	}
	return f.VersionInfo, nil
}

// Status implements the runtime's Status call.
func (f *Fake) Status(context.Context) (Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Status")
	if f.StatusErr != nil {
		return Status{}, f.StatusErr
	}
	return Status{Conditions: append([]Condition(nil), f.StatusInfo.Conditions...)}, nil
}

// ImageStatus implements the runtime's ImageStatus call.
func (f *Fake) ImageStatus(_ context.Context, ref string) (Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("ImageStatus " + ref)
	if f.ImageStatusErr != nil {
		return Image{}, f.ImageStatusErr
	}
	return f.Images[ref], nil
}

// SetImage adds (present) or removes (absent) an image, e.g. from a fake import.
func (f *Fake) SetImage(ref string, present bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if present {
		f.Images[ref] = Image{Present: true, ID: "sha256:fake-" + ref, RepoTags: []string{ref}}
	} else {
		delete(f.Images, ref)
	}
}

// SetCondition sets one runtime condition.
func (f *Fake) SetCondition(typ string, status bool, reason, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.StatusInfo.Conditions {
		if c.Type == typ {
			f.StatusInfo.Conditions[i] = Condition{Type: typ, Status: status, Reason: reason, Message: message}
			return
		}
	}
	f.StatusInfo.Conditions = append(f.StatusInfo.Conditions, Condition{Type: typ, Status: status, Reason: reason, Message: message})
}

// Close implements the client's Close.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("Close")
	return f.CloseErr
}

// TakeCalls returns the recorded calls and forgets them.
func (f *Fake) TakeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.Calls
	f.Calls = nil
	return c
}
