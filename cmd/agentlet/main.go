// Command agentlet is clusterctl's node agent. See package agentlet.
package main

import (
	"context"
	"os"

	"github.com/clusterctl/clusterctl/agentlet"
)

func main() {
	os.Exit(agentlet.Main(context.Background(), agentlet.Env{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.Args[1:]))
}
