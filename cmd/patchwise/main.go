// Command patchwise pretrains vision encoders with self-supervised pretext
// tasks, probes them and compares the results.
//
// Like the go command it has flat verbs, one file per verb:
//
//	patchwise <verb> [flags]
//
// Run 'patchwise help' for the list of verbs and 'patchwise help <verb>'
// for one verb's flags and an example.
//
// Exit codes: 0 ok, 1 failure, 2 usage error, 3 finished but skipped bad
// inputs, 4 a stage's inputs did not finish in time (run --stage), 130
// interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Exit codes. They are decided here only, by exitCode.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitSkipped     = 3
	exitNotReady    = 4
	exitInterrupted = 130
)

// command is one verb of the patchwise command line.
type command struct {
	name    string // verb, as typed
	summary string // one line for the overview
	usage   string // synopsis line, then a description
	example string // shell lines shown under "Example:"
	// run carries out the verb with the arguments after its name.
	// It returns flag.ErrHelp after printing help, a *usageError for bad
	// arguments, and other errors for failures.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands lists the verbs in the order the overview shows them. Each
// verb's file sets its run function in init, which breaks the
// initialisation cycle between a command and the function that prints its
// usage.
var commands = []*command{
	ingestCmd,
	inspectCmd,
	pairsCmd,
	viewsCmd,
	pretrainCmd,
	probeCmd,
	runCmd,
	compareCmd,
	exportCmd,
	benchCmd,
	versionCmd,
}

// lookup returns the verb called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError reports a command line that patchwise cannot accept: an
// unknown verb, a bad flag or a flag value out of range. It maps to exit
// code 2.
type usageError struct {
	verb string // verb whose usage was broken; "" for the top level
	err  error
}

// Error prefixes each line of the message with the verb.
func (e *usageError) Error() string {
	if e.verb == "" {
		return e.err.Error()
	}
	prefix := e.verb + ": "
	return prefix + strings.ReplaceAll(e.err.Error(), "\n", "\n"+prefix)
}

func (e *usageError) Unwrap() error { return e.err }

// errSkipped is wrapped by the error of a verb that finished its work but
// skipped bad inputs; it maps to exit code 3.
var errSkipped = errors.New("finished, but skipped bad inputs")

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		cancel()
		// After the first signal, restore Ctrl-C's default so that a
		// second one kills a verb that is slow to stop. Further SIGTERMs
		// are ignored: a batch scheduler may signal every process of a
		// job, and the script that passes the signal on too, while the
		// checkpoint is saved; it sends SIGKILL itself after its grace time.
		signal.Reset(os.Interrupt)
		for range sigs {
		}
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args (without the program name) to a verb and returns the
// process exit code. Errors are printed to stderr as "patchwise: <err>".
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := kernel.EnvError(); err != nil {
		fmt.Fprintf(stderr, "patchwise: warning: %v\n", err)
	}
	err := dispatch(ctx, args, stdout, stderr)
	code := exitCode(ctx, err)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "patchwise: %s\n", line)
		}
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "run '%s' for usage\n", strings.TrimSpace("patchwise help "+ue.verb))
		}
	}
	return code
}

// dispatch runs the verb named by args[0], or prints help.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		printOverview(stdout)
		return nil
	}
	switch name, rest := args[0], args[1:]; name {
	case "help", "-h", "-help", "--help":
		return help(ctx, rest, stdout, stderr)
	default:
		c := lookup(name)
		if c == nil {
			return &usageError{err: fmt.Errorf("unknown verb %q", name)}
		}
		return c.run(ctx, rest, stdout, stderr)
	}
}

// help prints the overview, or with one argument that verb's usage.
func help(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch len(args) {
	case 0:
		printOverview(stdout)
		return nil
	case 1:
		c := lookup(args[0])
		if c == nil {
			return &usageError{err: fmt.Errorf("help: unknown verb %q", args[0])}
		}
		return c.run(ctx, []string{"--help"}, stdout, stderr)
	default:
		return &usageError{err: errors.New("help: want at most one verb")}
	}
}

// printOverview lists the verbs with their summaries.
func printOverview(w io.Writer) {
	fmt.Fprint(w, `Patchwise pretrains vision encoders with self-supervised pretext tasks.

Usage:

	patchwise <verb> [flags]

Verbs:

`)
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\t%-10s %s\n", "help", "show help for a verb")
	fmt.Fprint(w, "\nRun 'patchwise help <verb>' for a verb's flags and an example.\n")
}

// exitCode maps the error a verb returned to the process exit code.
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	var nr *notReadyError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errSkipped):
		return exitSkipped
	case errors.As(err, &nr):
		return exitNotReady
	default:
		return exitFailure
	}
}

// newFlagSet returns an empty flag set for c. It prints nothing while
// parsing; see parseFlags.
func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printUsage(fs.Output(), c, fs) }
	return fs
}

// parseFlags parses args into fs, which must come from newFlagSet. On -h
// or --help it prints c's usage to stdout and returns flag.ErrHelp; a bad
// flag or a positional argument gives a *usageError.
func parseFlags(c *command, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return flag.ErrHelp
	case err != nil:
		return &usageError{verb: c.name, err: err}
	case fs.NArg() > 0:
		return &usageError{verb: c.name, err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// parseFlagsArgs is parseFlags for verbs that take positional arguments:
// flags may come before, between or after them (as in "ingest SRC -o DIR").
// It returns the positional arguments in order; "--" ends the flags.
func parseFlagsArgs(c *command, fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(stdout)
			fs.Usage()
			return nil, flag.ErrHelp
		case err != nil:
			return nil, &usageError{verb: c.name, err: err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printUsage prints c's usage text, its example and its flags with their
// defaults, spelling flags with two dashes (one for single letters).
func printUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n", strings.TrimSpace(c.usage))
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n\n%s\n", indent(strings.TrimSpace(c.example), "\t"))
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		typ, help := flag.UnquoteUsage(f)
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-" // -o, as in the synopsis
		}
		fmt.Fprintf(w, "  %s%s", dashes, f.Name)
		if typ != "" {
			fmt.Fprintf(w, " %s", typ)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(help, "\n", "\n    \t"))
		if d := f.DefValue; d != "" && d != "0" && d != "false" {
			fmt.Fprintf(w, " (default %s)", d)
		}
		fmt.Fprintln(w)
	})
}

// indent prefixes every line of s with prefix.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
