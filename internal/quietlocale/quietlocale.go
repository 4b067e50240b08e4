// Package quietlocale keeps Fyne from logging "Error parsing user locale C" on
// every run (CLI included) where LANG is C or POSIX, as in containers and CI:
// it sets LANG to C.UTF-8's language-neutral equivalent before Fyne's lang
// package reads it. It imports nothing but os and sorts before
// golang.org/x/text, so Go's package initialisation order (imports first, then
// by import path) runs it before fyne.io/fyne/v2/lang's init.
package quietlocale

import "os"

func init() {
	if os.Getenv("LC_ALL") != "" || os.Getenv("LC_MESSAGES") != "" {
		return
	}
	switch os.Getenv("LANG") {
	case "C", "POSIX", "C.UTF-8", "C.utf8":
		os.Setenv("LANG", "en_US.UTF-8")
	}
}
