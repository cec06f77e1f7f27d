package routes

import (
	"context"
	"sync"
)

// Fake stands in for Exec in tests: an in-memory main table. Calls records
// "replace <route>" and "delete <route>"; the *Err fields inject errors.
type Fake struct {
	mu         sync.Mutex
	Table      []Route
	Subnets    []Subnet
	ReplaceErr error
	DeleteErr  error
	Calls      []string
}

// Routes returns the table.
func (f *Fake) Routes(context.Context) ([]Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Route(nil), f.Table...), nil
}

// Connected returns Subnets.
func (f *Fake) Connected(context.Context) ([]Subnet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Subnet(nil), f.Subnets...), nil
}

// Replace adds r or replaces the route with its destination.
func (f *Fake) Replace(_ context.Context, r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, "replace "+r.String())
	if f.ReplaceErr != nil {
		return f.ReplaceErr
	}
	for i := range f.Table {
		if f.Table[i].Dst == r.Dst {
			f.Table[i] = r
			return nil
		}
	}
	f.Table = append(f.Table, r)
	return nil
}

// Delete removes our route to r.Dst.
func (f *Fake) Delete(_ context.Context, r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, "delete "+r.String())
	if f.DeleteErr != nil {
		return f.DeleteErr
	}
	for i := range f.Table {
		if f.Table[i].Dst == r.Dst && f.Table[i].Ours {
			f.Table = append(f.Table[:i], f.Table[i+1:]...)
			return nil
		}
	}
	return nil
}
