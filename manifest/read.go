package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Read reads, decodes, defaults and validates manifests, as kubectl's -f
// does: each path is a file, a directory (its *.yaml, *.yml and *.json files,
// in name order, not recursive) or "-" for stdin. It reports the problems of
// all files at once, including unreadable files and objects defined twice
// across files, as a *ValidationError, and then returns no objects.
//
// Read is the package's only I/O; decoding is done by Decode's pure code.
func Read(paths []string, stdin io.Reader) ([]Object, error) {
	if len(paths) == 0 {
		return nil, errors.New("read manifests: no files given")
	}
	d := newDecoder()
	var objs []decoded
	var problems []Problem
	seen := make(map[string]bool)
	decode := func(file string, data []byte) {
		o, ps := d.decodeFile(file, data)
		objs = append(objs, o...)
		problems = append(problems, ps...)
	}
	fail := func(file, format string, a ...any) {
		problems = append(problems, Problem{File: file, Message: fmt.Sprintf(format, a...)})
	}
	for _, p := range paths {
		if p == "-" {
			switch {
			case seen[p]:
				fail(p, "stdin is given more than once")
			case stdin == nil:
				fail(p, "cannot read: no stdin")
			default:
				data, err := io.ReadAll(stdin)
				if err != nil {
					fail(p, "cannot read: %v", err)
				} else {
					decode(p, data)
				}
			}
			seen[p] = true
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			fail(p, "cannot read: %v", pathErr(err))
			continue
		}
		files := []string{p}
		if info.IsDir() {
			if files, err = manifestFiles(p); err != nil {
				fail(p, "cannot read directory: %v", pathErr(err))
				continue
			}
			if len(files) == 0 {
				fail(p, "no *.yaml, *.yml or *.json files in this directory")
			}
		}
		for _, f := range files {
			if key := filepath.Clean(f); seen[key] {
				continue // given twice, e.g. as a file and through its directory
			} else {
				seen[key] = true
			}
			data, err := os.ReadFile(f)
			if err != nil {
				fail(f, "cannot read: %v", pathErr(err))
				continue
			}
			decode(f, data)
		}
	}
	problems = append(problems, duplicates(objs)...)
	return finish(objs, problems)
}

// manifestFiles lists the manifest files of dir, sorted by name; not
// recursive.
func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		f := filepath.Join(dir, e.Name())
		if info, err := os.Stat(f); err != nil || info.IsDir() {
			continue // a directory, or a dangling symlink
		}
		files = append(files, f)
	}
	return files, nil
}

// pathErr drops the operation and path from an *fs.PathError, which the
// problem already names.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
