package cli

import "github.com/stptunnel/stptunnel/pkg/awssim/simscript"

// The AWS emulator's commands: awssim SEED.json, awssim-env, awssim-count, awssim-fault, ...
func init() { registerScriptCmds(simscript.Commands()) }
