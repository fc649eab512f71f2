package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/hotsnap/hotsnap/archive/repo"
	"github.com/hotsnap/hotsnap/errs"
	"github.com/hotsnap/hotsnap/internal/par"
	"github.com/hotsnap/hotsnap/manifest"
	"github.com/hotsnap/hotsnap/report"
	"github.com/hotsnap/hotsnap/snapshot"
)

// env carries what every command needs: where output goes and how.
type env struct {
	*report.Output
	log *slog.Logger
}

type envKey struct{}

func getEnv(c *cli.Context) *env { return c.Context.Value(envKey{}).(*env) }

// Flags shared by the commands that work on a data dir. They are built anew
// for every app: urfave/cli stores values from the environment in the flag
// structs, so shared structs would carry one run's values into the next.
func dataDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "data-dir", Aliases: []string{"d"}, EnvVars: []string{"HOTSNAP_DATA_DIR"},
		Usage: "the application's data directory"}
}

func backupsDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "backups-dir", EnvVars: []string{"HOTSNAP_BACKUPS_DIR"},
		Usage: "where snapshots live (default <data-dir>/backups; must be on the data dir's filesystem)"}
}

func allowSharedFlag() cli.Flag {
	return &cli.BoolFlag{Name: "allow-shared-backups", EnvVars: []string{"HOTSNAP_ALLOW_SHARED_BACKUPS"},
		Usage: "accept a backups dir and snapshot dirs that other users may write (manifests must still be hotsnap's own; see docs/security.md)"}
}

// fastVerifyFlag is --fast-verify: check files by stat only.
func fastVerifyFlag(usage string) cli.Flag { return &cli.BoolFlag{Name: "fast-verify", Usage: usage} }

// oldFlag is a concept's former flag name, kept hidden for one release
// (CHANGELOG.md): read it with boolFlag or stringFlag.
func oldFlag(old, now string, isString bool) cli.Flag {
	if isString {
		return &cli.StringFlag{Name: old, Hidden: true, Usage: "the old name of --" + now}
	}
	return &cli.BoolFlag{Name: old, Hidden: true, Usage: "the old name of --" + now}
}

func boolFlag(c *cli.Context, now, old string) bool { return c.Bool(now) || c.Bool(old) }

func stringFlag(c *cli.Context, now, old string) string {
	if v := c.String(now); v != "" {
		return v
	}
	return c.String(old)
}

// nodeIDFlag is --node-id of the commands of one node, what usage says.
func nodeIDFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "node-id", Value: snapshot.DefaultNodeID, EnvVars: []string{"HOTSNAP_NODE_ID"}, Usage: usage}
}

func idFlag() cli.Flag { return &cli.StringFlag{Name: "id", Usage: "snapshot id"} }

func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print JSON (one object per line) instead of text"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only errors"},
		&cli.StringFlag{Name: "log-level", EnvVars: []string{"HOTSNAP_LOG_LEVEL"}, Value: "warn", Usage: "debug, info, warn or error (logs go to stderr)"},
	}
}

func withOutput(flags ...cli.Flag) []cli.Flag { return append(flags, outputFlags()...) }

func newApp() *cli.App {
	app := &cli.App{
		Name:                      "hotsnap",
		Usage:                     "consistent hot snapshots of a live data directory",
		Version:                   fmt.Sprintf("%s (manifest format %d, archive format %d)", snapshot.ToolVersion, manifest.Format, repo.FormatVersion),
		HideHelpCommand:           true,
		Suggest:                   true,
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			createCommand(), listCommand(), lsCommand(), diffCommand(), catCommand(), deleteCommand(), verifyCommand(), restoreCommand(), recoverCommand(),
			usageCommand(), pruneCommand(), failsafeCommand(), runCommand(), uploadCommand(), downloadCommand(), archiveCommand(),
			agentCommand(), clusterCommand(), versionCommand(),
		},
		OnUsageError:   onUsageError,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, cmd := range allCommands(app.Commands) {
		cmd.OnUsageError = app.OnUsageError
		if cmd.Action != nil {
			cmd.Before = setupEnv // no command has a Before of its own
		}
	}
	return app
}

// allCommands is cmds and their subcommands, all the way down.
func allCommands(cmds []*cli.Command) []*cli.Command {
	var all []*cli.Command
	for _, cmd := range cmds {
		all = append(append(all, cmd), allCommands(cmd.Subcommands)...)
	}
	return all
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print hotsnap's version and the manifest and archive formats it writes",
		Flags: outputFlags(),
		Action: func(c *cli.Context) error {
			v := map[string]any{"version": snapshot.ToolVersion, "manifestFormat": manifest.Format, "archiveFormat": repo.FormatVersion}
			getEnv(c).Result(v, report.Line("hotsnap %s (manifest format %d, archive format %d)", v["version"], v["manifestFormat"], v["archiveFormat"]))
			return nil
		},
	}
}

// bareSeconds lets a duration flag take a bare number as seconds, as the
// documents write it (--max-wait-for-lock 5): such a value gets an "s".
func bareSeconds(app *cli.App, args []string) []string {
	durations := map[string]bool{}
	for _, cmd := range allCommands(app.Commands) {
		for _, f := range cmd.Flags {
			if _, ok := f.(*cli.DurationFlag); ok {
				for _, n := range f.Names() {
					durations[n] = true
				}
			}
		}
	}
	number := func(v string) bool {
		_, err := strconv.ParseFloat(v, 64)
		return err == nil && v != "" && v[0] != '-' && v[0] != '+'
	}
	out := append([]string(nil), args...)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || !durations[name] {
			continue
		}
		switch {
		case hasVal && number(val):
			out[i] = a + "s"
		case !hasVal && i+1 < len(out) && number(out[i+1]):
			out[i+1] += "s"
			i++
		}
	}
	return out
}

// onUsageError names an unknown flag with two dashes, as it is written,
// and suggests the closest one the command has; a bad value keeps the
// flag's name.
func onUsageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		name = strings.TrimLeft(name, "-")
		msg = "unknown flag --" + name
		var flags []cli.Flag
		if c.Command != nil {
			flags = c.Command.Flags
		}
		if cli.SuggestFlag != nil {
			if s := cli.SuggestFlag(flags, name, true); s != "" {
				msg += "; did you mean " + s + "?"
			}
		}
		return usageError{errors.New(msg)}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		// "invalid value "x" for flag -name: parse error" reads better with
		// the flag as it is written.
		msg = "invalid value " + strings.Replace(rest, " for flag -", " for flag --", 1)
	}
	return usageError{errors.New(msg)}
}

// setupEnv reads the output flags into the env.
func setupEnv(c *cli.Context) error {
	e := getEnv(c)
	e.JSON = c.Bool("json")
	e.Quiet = c.Bool("quiet")
	level := slog.LevelWarn // commands without the output flags
	if c.String("log-level") != "" || c.IsSet("log-level") {
		if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
			return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))}
		}
	}
	if e.Quiet {
		level = slog.LevelError
	}
	e.log = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// run is the whole CLI, callable in-process by tests.
func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{Output: &report.Output{Stdout: stdout, Stderr: stderr}, log: slog.New(slog.DiscardHandler)}
	for _, a := range args {
		if a == "--json" || a == "-json" || a == "--json=true" {
			e.JSON = true
		}
	}
	app := newApp()
	app.Writer, app.ErrWriter = stdout, stderr
	args = bareSeconds(app, args)
	// A panic in the command is a bug: reported as an internal error with
	// its own exit code, never a crash that looks like a usage error (2).
	err := par.Safely(func() error { return app.RunContext(context.WithValue(ctx, envKey{}, e), args) })
	var pe *par.PanicError
	if errors.As(err, &pe) && os.Getenv("HOTSNAP_DEBUG") != "" {
		fmt.Fprintf(stderr, "%s\n", pe.Stack)
	}
	// urfave/cli reports these two usage mistakes as plain errors.
	if err != nil && strings.HasPrefix(err.Error(), "flag provided but not defined") {
		err = usageError{err}
	}
	if err != nil && strings.HasPrefix(err.Error(), "No help topic for") {
		err = usageError{fmt.Errorf("unknown command %s (see hotsnap --help)", strings.TrimPrefix(err.Error(), "No help topic for "))}
	}
	if err != nil && ctx.Err() != nil {
		// The root context ends only on SIGINT or SIGTERM: whatever failed
		// on the way, a person asked to stop.
		err = fmt.Errorf("%w (%v): %s", errs.ErrInterrupted, err, report.InterruptNote(args))
	}
	code, kind := exitCode(err)
	var silent silentError
	if err != nil && !errors.As(err, &silent) {
		e.Error(err, code, kind)
	}
	return code
}

// layout resolves --data-dir and --backups-dir.
func layout(c *cli.Context) (*snapshot.Layout, error) {
	if c.String("data-dir") == "" {
		return nil, usageError{errors.New("--data-dir (or HOTSNAP_DATA_DIR) is required")}
	}
	l, err := snapshot.NewLayout(c.String("data-dir"), c.String("backups-dir"))
	if err != nil {
		return nil, err
	}
	l.AllowSharedBackups = c.Bool("allow-shared-backups")
	return l, nil
}

func requireID(c *cli.Context) (string, error) {
	id := c.String("id")
	if id == "" {
		return "", usageError{errors.New("--id is required")}
	}
	return id, nil
}

// prologue is the start of every command on a data dir: no stray
// arguments, the output env, the resolved layout and, with needID, --id.
func prologue(c *cli.Context, needID bool) (*env, *snapshot.Layout, string, error) {
	if err := noArgs(c); err != nil {
		return nil, nil, "", err
	}
	var id string
	if needID {
		var err error
		if id, err = requireID(c); err != nil {
			return nil, nil, "", err
		}
	}
	l, err := layout(c)
	if err != nil {
		return nil, nil, "", err
	}
	return getEnv(c), l, id, nil
}

// localCmd is a command on one data dir: the data dir's flags (and --id
// with needID), its flags, the output flags; action gets the layout.
func localCmd(name, usage string, needID bool, flags []cli.Flag, action func(c *cli.Context, e *env, l *snapshot.Layout, id string) error) *cli.Command {
	all := []cli.Flag{dataDirFlag(), backupsDirFlag(), allowSharedFlag()}
	if needID {
		all = append(all, idFlag())
	}
	return &cli.Command{Name: name, Usage: usage, Flags: withOutput(append(all, flags...)...),
		Action: func(c *cli.Context) error {
			e, l, id, err := prologue(c, needID)
			if err != nil {
				return err
			}
			return action(c, e, l, id)
		}}
}

// show prints a command's result res in its text form, unless it failed.
func show[T any](e *env, res T, err error, text func(T) report.Text) error {
	if err != nil {
		return err
	}
	e.Result(res, text(res))
	return nil
}

func noArgs(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (all inputs are flags)", c.Args().First())}
	}
	return nil
}
