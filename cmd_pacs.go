package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/medsa/medsa/io/dicomweb"
	"github.com/medsa/medsa/io/load"
)

func init() { commands["pacs"] = runPACS }

const pacsUsage = `usage:
  medsa pacs search --server URL [--patient NAME] [--id ID] [--date YYYYMMDD[-YYYYMMDD]]
                    [--modality CT] [--accession A] [--study UID] [--json]
  medsa pacs push FILE.dcm [FILE.dcm ...] --server URL
  medsa pacs get SERIES_URL          retrieve a series into the local cache; print its folder
URL is the DICOMweb root (e.g. http://host:8042/dicom-web). Credentials come from the servers
file (` + "$MEDSA_DICOMWEB_CONFIG or ~/.config/medsa/dicomweb.json, mode 600" + `) or from
MEDSA_DICOMWEB_USER + MEDSA_DICOMWEB_PASSWORD or MEDSA_DICOMWEB_TOKEN, never from the command line.
Any command that takes an image PATH also takes a series URL: URL/studies/{study}/series/{series}.`

func runPACS(args []string) error {
	if len(args) == 0 {
		return errors.New(pacsUsage)
	}
	switch args[0] {
	case "search":
		return pacsSearch(args[1:], os.Stdout)
	case "push":
		return pacsPush(args[1:], os.Stdout)
	case "get":
		return pacsGet(args[1:], os.Stdout)
	}
	return fmt.Errorf("unknown pacs command %q\n%s", args[0], pacsUsage)
}

// pacsClient builds the client for --server with the configured credentials.
func pacsClient(server string) (*dicomweb.Client, error) {
	if server == "" {
		return nil, errors.New("--server URL is required (the DICOMweb root)")
	}
	cfg, err := dicomweb.LoadConfig(dicomweb.ConfigPath())
	if err != nil {
		return nil, err
	}
	return dicomweb.NewClient(cfg.Lookup(server))
}

// interruptible is a context that Ctrl-C (or SIGTERM) cancels.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func pacsSearch(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pacs search", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", "", "DICOMweb root URL")
	var f dicomweb.Filter
	fs.StringVar(&f.PatientName, "patient", "", "patient name (wildcards * ?)")
	fs.StringVar(&f.PatientID, "id", "", "patient ID")
	fs.StringVar(&f.Date, "date", "", "study date YYYYMMDD or range YYYYMMDD-YYYYMMDD")
	fs.StringVar(&f.Modality, "modality", "", "modality in study, e.g. CT")
	fs.StringVar(&f.Accession, "accession", "", "accession number")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many studies")
	study := fs.String("study", "", "list the series of this study instead")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v\n%s", err, pacsUsage)
	}
	c, err := pacsClient(*server)
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	if *study != "" {
		series, err := c.SearchSeries(ctx, *study)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(out, series)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tMODALITY\tINSTANCES\tDESCRIPTION\tURL")
		for _, s := range series {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s/studies/%s/series/%s\n", s.Number, s.Modality, s.Instances, s.Description, c.Root, s.StudyUID, s.UID)
		}
		return tw.Flush()
	}
	studies, err := c.SearchStudies(ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(out, studies)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tPATIENT\tID\tMODALITIES\tSERIES\tINSTANCES\tDESCRIPTION\tSTUDY UID")
	for _, s := range studies {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Date, s.PatientName, s.PatientID, strings.Join(s.Modalities, ","),
			s.Series, s.Instances, s.Description, s.UID)
	}
	return tw.Flush()
}

func writeJSON(out io.Writer, v any) error {
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func pacsPush(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("pacs push", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", "", "DICOMweb root URL")
	var files []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%v\n%s", err, pacsUsage)
		}
		args = fs.Args()
		if len(args) > 0 {
			files = append(files, args[0])
			args = args[1:]
		}
	}
	if len(files) == 0 {
		return errors.New("no file to push\n" + pacsUsage)
	}
	var blobs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if len(b) < 132 || string(b[128:132]) != "DICM" {
			return fmt.Errorf("%s: not a DICOM Part 10 file (no DICM marker); only DICOM objects can be stored", f)
		}
		blobs = append(blobs, b)
	}
	c, err := pacsClient(*server)
	if err != nil {
		return err
	}
	ctx, cancel := interruptible()
	defer cancel()
	res, err := c.Store(ctx, blobs...)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "medsa pacs push: warning:", w)
	}
	fmt.Fprintf(out, "stored %d object(s) on %s: %s\n", len(res.Stored), c.Root, strings.Join(res.Stored, " "))
	return nil
}

func pacsGet(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("want one series URL\n" + pacsUsage)
	}
	ctx, cancel := interruptible()
	defer cancel()
	opt := load.Options{Context: ctx}
	if isTerminal(os.Stderr) {
		opt.Progress = func(done, total int) { fmt.Fprintf(os.Stderr, "\rmedsa pacs get: %d/%d instances", done, total) }
	}
	dir, err := load.Resolve(args[0], opt)
	if opt.Progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	if dir == args[0] {
		return fmt.Errorf("%s is not a DICOMweb series URL (want .../studies/{StudyUID}/series/{SeriesUID})", args[0])
	}
	fmt.Fprintln(out, dir)
	return nil
}

// isTerminal reports a character device (a terminal) rather than a file or pipe.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
