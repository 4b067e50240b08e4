// Command medsa is an interactive medical image segmentation tool: with no
// subcommand it opens the GUI; `medsa info|convert|segment|bench` run headless.
package main

import (
	"fmt"
	"os"

	"github.com/medsa/medsa/io/atomicfile"
)

// commands maps each headless subcommand to its implementation (cmd_*.go).
var commands = map[string]func(args []string) error{}

func main() {
	if len(os.Args) > 1 {
		if run, ok := commands[os.Args[1]]; ok {
			// SIGINT, SIGTERM, SIGHUP (those not ignored at start): remove the temporary files of saves in
			// progress, then die of the signal (io/atomicfile).
			atomicfile.HandleSignals()
			if err := run(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "medsa %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			return
		}
		if os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
			usage()
			return
		}
	}
	if err := runGUI(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "medsa: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Println(`usage:
  medsa [PATH]                        open the GUI (on PATH, or offer the bundled sample)
  medsa info PATH                     print the image's geometry as JSON
  medsa convert PATH OUT.nii.gz       write the image as NIfTI
  medsa segment --image PATH --out MASK [--point i,j,k,+] [--box i0,j0,i1,j1,k] ...
  medsa bench [--image PATH] [--json] encoder/decoder/click-to-mask latency`)
}
