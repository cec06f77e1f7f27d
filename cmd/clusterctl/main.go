// Command clusterctl turns plain Linux hosts reachable over SSH into a cluster
// that runs standard Kubernetes manifests.
package main

import (
	"os"

	"github.com/clusterctl/clusterctl/cli"
)

func main() {
	os.Exit(cli.Run(&cli.Env{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Getenv: os.Getenv}, os.Args))
}
