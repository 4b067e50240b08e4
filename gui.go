package main

import "errors"

// runGUI opens the main window (issue 5 replaces this).
func runGUI(args []string) error {
	return errors.New("the GUI is not built yet (issue 5); use medsa info|convert")
}
