package iptables

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clusterctl/clusterctl/nodeapi"
)

func syncSpec() *nodeapi.NodeSpec {
	in := svcInput(3)
	return &nodeapi.NodeSpec{
		NodeName: "h1", PodCIDR: "10.244.1.0/24",
		Cluster:  nodeapi.ClusterInfo{PodCIDR: "10.244.0.0/16", ServiceCIDR: "10.96.0.0/12"},
		Services: in.Services,
	}
}

func TestServiceSyncer(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	now := time.Unix(1000, 0)
	s := &ServiceSyncer{IPT: f, Resync: time.Minute, Now: func() time.Time { return now }}
	spec := syncSpec()
	if err := s.Sync(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	calls := f.TakeCalls()
	// save nat, save filter, 3 restores (targets, Services, dispatch), 7 jumps checked and inserted
	if calls[0] != "save nat" || calls[1] != "save filter" || calls[2] != "restore" || calls[4] != "restore" || len(calls) != 5+2*7 {
		t.Fatalf("full sync calls = %v", calls)
	}
	// Nothing changed: no call at all.
	if err := s.Sync(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	if calls := f.TakeCalls(); len(calls) != 0 {
		t.Errorf("unchanged sync ran %v", calls)
	}
	// A local pod seen unready: one incremental restore.
	spec.Services[1].Endpoints[0].PodUID = "uid-x"
	if err := s.Sync(ctx, spec, map[string]bool{"uid-x": true}); err != nil {
		t.Fatal(err)
	}
	if calls := f.TakeCalls(); len(calls) != 1 || calls[0] != "restore" {
		t.Errorf("incremental sync ran %v", calls)
	}
	last := string(f.Restored[len(f.Restored)-1])
	if strings.Contains(last, "--to-destination 10.244.1.3:") || strings.Count(last, "\n:") != 6 {
		t.Errorf("incremental payload too big or holds the unready endpoint:\n%s", last)
	}
	// A failed restore forces a full sync next time.
	f.RestoreErr = errors.New("boom")
	spec.Services = spec.Services[1:]
	if err := s.Sync(ctx, spec, nil); err == nil || !strings.Contains(err.Error(), "sync service rules: boom") {
		t.Fatalf("err = %v", err)
	}
	f.RestoreErr = nil
	f.TakeCalls()
	if err := s.Sync(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	if calls := f.TakeCalls(); calls[0] != "save nat" {
		t.Errorf("after a failure the sync was not full: %v", calls)
	}
	// Resync period: full again.
	now = now.Add(2 * time.Minute)
	if err := s.Sync(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	if calls := f.TakeCalls(); len(calls) == 0 || calls[0] != "save nat" {
		t.Errorf("resync was not full: %v", calls)
	}
	if err := s.Sync(ctx, &nodeapi.NodeSpec{}, nil); err == nil {
		t.Error("spec without CIDRs accepted")
	}
}
