package inventory

import (
	"fmt"
	"os"
	"strings"
)

// RegistryCredentials returns the username and password of r, reading
// PasswordEnv through getenv or PasswordFile from disk. A registry without
// credentials yields "", "" and no error.
func (inv *Inventory) RegistryCredentials(r Registry, getenv func(string) string) (username, password string, err error) {
	switch {
	case r.Username == "":
		return "", "", nil
	case r.Password != "":
		return r.Username, r.Password, nil
	case r.PasswordEnv != "":
		p := getenv(r.PasswordEnv)
		if p == "" {
			return "", "", fmt.Errorf("read password of registry %s: environment variable %s is empty or unset", r.Host, r.PasswordEnv)
		}
		return r.Username, p, nil
	case r.PasswordFile != "":
		path := inv.ResolvePath(r.PasswordFile)
		data, err := os.ReadFile(path)
		if err != nil {
			return "", "", fmt.Errorf("read password of registry %s: %w", r.Host, err)
		}
		p := strings.TrimRight(string(data), "\r\n")
		if p == "" {
			return "", "", fmt.Errorf("read password of registry %s: %s is empty", r.Host, path)
		}
		return r.Username, p, nil
	}
	return "", "", fmt.Errorf("read password of registry %s: username %s has no password source", r.Host, r.Username)
}
