package cli

import (
	"fmt"
	"slices"
	"strings"
	"text/template"

	"github.com/urfave/cli/v2"
)

// Shell completion and the manual page are generated from the command tree itself, so they never fall behind it.
// The manual is urfave/cli's (App.ToManWithSection). Its completion is not used: for bash and zsh urfave/cli v2
// only ships scripts that call the program back with --generate-bash-completion on every Tab (App.
// EnableBashCompletion, a process per key press), and its fish script (App.ToFishCompletion) offers file names
// beside the subcommands and cannot offer a command's argument words. Instead one walk of the tree (completionTree)
// feeds three small static scripts, so the shells complete alike: subcommands, the flags of each command (values
// of flags that take one are left to the shell's file completion), `completion`'s shells, and after `--` the
// command dev runs, as that command.

var completionShells = []string{"bash", "zsh", "fish"}

// completionArgs are the words a command takes as arguments, completed like subcommands.
var completionArgs = map[string][]string{"completion": completionShells}

func (a *app) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: strings.Join(completionShells, "|"),
		// Else urfave/cli adds a help subcommand to the command that runs, and fish's script would offer it.
		HideHelpCommand: true,
		Description: "Load it in the current shell, or install it where the shell looks for completions:\n" +
			"  bash: source <(stptunnel completion bash)   or save it as ~/.local/share/bash-completion/completions/stptunnel\n" +
			"  zsh:  source <(stptunnel completion zsh)    or save it as _stptunnel in a directory of $fpath\n" +
			"  fish: stptunnel completion fish | source    or save it as ~/.config/fish/completions/stptunnel.fish\n" +
			"The release archives carry the three scripts in completions/.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("completion takes one shell: %s", strings.Join(completionShells, ", "))
			}
			script, err := completionScript(c.App, c.Args().First())
			if err != nil {
				return err
			}
			if _, err := fmt.Fprint(a.stdout, script); err != nil {
				return fmt.Errorf("writing the completion script: %w", err)
			}
			return nil
		},
	}
}

// manCommand prints the manual page (roff, section 1) on stdout: the release archives carry it as
// man/man1/stptunnel.1. Hidden: it is a build step, not a user's command (`man stptunnel` is).
func (a *app) manCommand() *cli.Command {
	return &cli.Command{
		Name:   "man",
		Usage:  "print the manual page (roff)",
		Hidden: true,
		Action: func(c *cli.Context) error {
			page, err := c.App.ToManWithSection(1)
			if err != nil {
				return fmt.Errorf("rendering the manual page: %w", err)
			}
			if _, err := fmt.Fprint(a.stdout, page); err != nil {
				return fmt.Errorf("writing the manual page: %w", err)
			}
			return nil
		},
	}
}

func completionScript(app *cli.App, shell string) (string, error) {
	if !slices.Contains(completionShells, shell) {
		return "", usageError("no completion for shell %q: choose %s", shell, strings.Join(completionShells, ", "))
	}
	var b strings.Builder
	if err := completionTemplates.Lookup(shell).Execute(&b, completionTree(app)); err != nil {
		return "", fmt.Errorf("rendering the %s completion: %w", shell, err)
	}
	return b.String(), nil
}

// complNode is one command of the tree as the scripts see it. The root is the node with Path "".
type complNode struct {
	Path       string      // the command words after the program name: "tunnel open"
	Words      []complWord // subcommands, or the words the command takes as arguments
	Flags      []complWord // every spelling: --state-dir, -q, --help
	ValueFlags []string    // the spellings of the flags that take a value (the next word is that value)
}

type complWord struct{ Name, Usage string }

func completionTree(app *cli.App) []complNode {
	root := complNode{Flags: complFlags(app.VisibleFlags(), !app.HideHelp, !app.HideVersion)}
	root.ValueFlags = valueFlags(app.VisibleFlags())
	root.Words = complCommands(app.VisibleCommands())
	nodes := []complNode{root}
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			if !completable(c) {
				continue
			}
			for _, name := range c.Names() {
				n := complNode{Path: strings.TrimSpace(prefix + " " + name)}
				n.Flags = complFlags(c.VisibleFlags(), !c.HideHelp, false)
				n.ValueFlags = valueFlags(c.VisibleFlags())
				n.Words = complCommands(c.VisibleCommands())
				for _, w := range completionArgs[c.Name] {
					n.Words = append(n.Words, complWord{Name: w})
				}
				nodes = append(nodes, n)
				walk(n.Path, c.Subcommands)
			}
		}
	}
	walk("", app.VisibleCommands())
	return nodes
}

func complCommands(cmds []*cli.Command) []complWord {
	var words []complWord
	for _, c := range cmds {
		if !completable(c) {
			continue
		}
		for _, name := range c.Names() {
			words = append(words, complWord{Name: name, Usage: c.Usage})
		}
	}
	return words
}

// completable: a command users type. urfave/cli adds a help subcommand to the command that runs; `--help` is
// the completed spelling.
func completable(c *cli.Command) bool { return !c.Hidden && c.Name != "help" }

func complFlags(flags []cli.Flag, help, version bool) []complWord {
	if help && !slices.Contains(flags, cli.HelpFlag) {
		flags = append(slices.Clone(flags), cli.HelpFlag)
	}
	if version && !slices.Contains(flags, cli.VersionFlag) {
		flags = append(slices.Clone(flags), cli.VersionFlag)
	}
	var words []complWord
	for _, f := range flags {
		usage := ""
		if d, ok := f.(cli.DocGenerationFlag); ok {
			usage = strings.ReplaceAll(d.GetUsage(), "`", "") // backquotes name the value in --help
		}
		for _, name := range f.Names() {
			words = append(words, complWord{Name: flagSpelling(name), Usage: usage})
		}
	}
	return words
}

func valueFlags(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		if d, ok := f.(cli.DocGenerationFlag); ok && d.TakesValue() {
			for _, name := range f.Names() {
				out = append(out, flagSpelling(name))
			}
		}
	}
	return out
}

func flagSpelling(name string) string {
	name = strings.TrimSpace(name)
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// shQuote quotes s for bash and zsh: in single quotes, each quote inside closes them, is escaped and reopens them.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishQuote quotes s for fish: single quotes, in which \ and ' are escaped with a backslash.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

// fishPairs formats words as the arguments of printf '%s\t%s\n': each name and its usage, quoted.
func fishPairs(words []complWord) string {
	out := make([]string, 0, 2*len(words))
	for _, w := range words {
		out = append(out, fishQuote(w.Name), fishQuote(strings.ReplaceAll(w.Usage, "\n", " ")))
	}
	return strings.Join(out, " ")
}

// names joins the words' names with spaces, for a compgen word list.
func names(words []complWord) string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = w.Name
	}
	return strings.Join(out, " ")
}

// described formats words as name:usage for zsh's _describe, colons in the name escaped.
func described(words []complWord) string {
	out := make([]string, len(words))
	for i, w := range words {
		d := strings.ReplaceAll(w.Name, ":", `\:`)
		if u := strings.ReplaceAll(w.Usage, "\n", " "); u != "" {
			d += ":" + u
		}
		out[i] = shQuote(d)
	}
	return strings.Join(out, " ")
}

var completionTemplates = template.Must(template.New("bash").Funcs(template.FuncMap{
	"q": shQuote, "names": names, "described": described, "join": strings.Join,
	"fq": fishQuote, "fishPairs": fishPairs,
}).Parse(bashCompletion))

func init() {
	template.Must(completionTemplates.New("zsh").Parse(zshCompletion))
	template.Must(completionTemplates.New("fish").Parse(fishCompletion))
}

const bashCompletion = `# bash completion for stptunnel                                  -*- shell-script -*-
# Generated by ` + "`stptunnel completion bash`" + ` from stptunnel's command tree. Load it with
#   source <(stptunnel completion bash)
# or save it as ~/.local/share/bash-completion/completions/stptunnel.

# The subcommands (or argument words) of a command, given as the command words after "stptunnel".
__stptunnel_words() {
    case $1 in
{{- range .}}{{if .Words}}
    {{q .Path}}) echo {{q (names .Words)}} ;;{{end}}{{end}}
    esac
}

# The flags a command accepts.
__stptunnel_flags() {
    case $1 in
{{- range .}}
    {{q .Path}}) echo {{q (names .Flags)}} ;;{{end}}
    esac
}

# The flags of a command that take a value as the next word.
__stptunnel_value_flags() {
    case $1 in
{{- range .}}{{if .ValueFlags}}
    {{q .Path}}) echo {{q (join .ValueFlags " ")}} ;;{{end}}{{end}}
    esac
}

_stptunnel() {
    local cur=${COMP_WORDS[COMP_CWORD]} cmd="" word i skip=0
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((skip)); then
            # --flag=value comes as three words, the "=" its own
            [[ $word == = ]] || skip=0
            continue
        fi
        case $word in
        --)
            # What follows is a command of its own (stptunnel dev -- npm test): complete it as one.
            if declare -F _command_offset >/dev/null; then
                _command_offset $((i + 1))
            fi
            return 0
            ;;
        -*=*) ;;
        -*)
            [[ " $(__stptunnel_value_flags "$cmd") " == *" $word "* ]] && skip=1
            ;;
        *)
            [[ " $(__stptunnel_words "$cmd") " == *" $word "* ]] && cmd=${cmd:+$cmd }$word
            ;;
        esac
    done
    # A flag's value: no list to offer, the shell's default (file names) applies.
    ((skip)) && return 0
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(__stptunnel_flags "$cmd")" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(__stptunnel_words "$cmd")" -- "$cur"))
    fi
    return 0
}

complete -o default -F _stptunnel stptunnel
`

const zshCompletion = `#compdef stptunnel
# zsh completion for stptunnel, generated by ` + "`stptunnel completion zsh`" + ` from stptunnel's command tree.
# Load it with
#   source <(stptunnel completion zsh)
# after compinit, or save it as _stptunnel in a directory of $fpath.

# The subcommands (or argument words) of a command, given as the command words after "stptunnel", as name:usage.
__stptunnel_words() {
    case $1 in
{{- range .}}{{if .Words}}
    {{q .Path}}) reply=({{described .Words}}) ;;{{end}}{{end}}
    *) reply=() ;;
    esac
}

# The flags a command accepts, as name:usage.
__stptunnel_flags() {
    case $1 in
{{- range .}}
    {{q .Path}}) reply=({{described .Flags}}) ;;{{end}}
    *) reply=() ;;
    esac
}

# The flags of a command that take a value as the next word.
__stptunnel_value_flags() {
    case $1 in
{{- range .}}{{if .ValueFlags}}
    {{q .Path}}) reply=({{join .ValueFlags " "}}) ;;{{end}}{{end}}
    *) reply=() ;;
    esac
}

_stptunnel() {
    local cmd="" word i skip=0
    local -a reply
    for ((i = 2; i < CURRENT; i++)); do
        word=${words[i]}
        if ((skip)); then
            skip=0
            continue
        fi
        case $word in
        --)
            # What follows is a command of its own (stptunnel dev -- npm test): complete it as one.
            words=("${(@)words[i+1,-1]}")
            ((CURRENT -= i))
            _normal
            return
            ;;
        -*=*) ;;
        -*)
            __stptunnel_value_flags "$cmd"
            ((${reply[(Ie)$word]})) && skip=1
            ;;
        *)
            __stptunnel_words "$cmd"
            ((${reply[(I)${(b)word}(|:*)]})) && cmd=${cmd:+$cmd }$word
            ;;
        esac
    done
    if ((skip)); then
        _files
        return
    fi
    if [[ ${words[CURRENT]} == -* ]]; then
        __stptunnel_flags "$cmd"
        _describe -t flags 'flag' reply
    else
        __stptunnel_words "$cmd"
        if ((${#reply})); then
            _describe -t commands 'command' reply
        else
            _files
        fi
    fi
}

# Sourced, this registers the function; autoloaded from $fpath, this file is the function's body: run it.
if [[ $funcstack[1] == _stptunnel ]]; then
    _stptunnel "$@"
else
    compdef _stptunnel stptunnel
fi
`

const fishCompletion = `# fish completion for stptunnel, generated by ` + "`stptunnel completion fish`" + ` from stptunnel's command tree.
# Load it with
#   stptunnel completion fish | source
# or save it as ~/.config/fish/completions/stptunnel.fish.

# The subcommands (or argument words) of a command, given as the command words after "stptunnel", as name<TAB>usage.
function __stptunnel_words --argument-names cmd
    switch $cmd
{{- range .}}{{if .Words}}
        case {{fq .Path}}
            printf '%s\t%s\n' {{fishPairs .Words}}{{end}}{{end}}
    end
end

# The flags a command accepts, as name<TAB>usage.
function __stptunnel_flags --argument-names cmd
    switch $cmd
{{- range .}}
        case {{fq .Path}}
            printf '%s\t%s\n' {{fishPairs .Flags}}{{end}}
    end
end

# The flags of a command that take a value as the next word.
function __stptunnel_value_flags --argument-names cmd
    switch $cmd
{{- range .}}{{if .ValueFlags}}
        case {{fq .Path}}
            printf '%s\n'{{range .ValueFlags}} {{fq .}}{{end}}{{end}}{{end}}
    end
end

function __stptunnel_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd ''
    set -l skip 0
    for i in (seq 2 (count $tokens))
        set -l word $tokens[$i]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case '--'
                # What follows is a command of its own (stptunnel dev -- npm test): complete it as one.
                __fish_complete_subcommand --commandline $tokens[(math $i + 1)..-1] $cur
                return
            case '-*=*'
            case '-*'
                contains -- $word (__stptunnel_value_flags $cmd); and set skip 1
            case '*'
                if contains -- $word (__stptunnel_words $cmd | string replace -r '\t.*' '')
                    set cmd (string trim -- "$cmd $word")
                end
        end
    end
    # A flag's value: file names.
    if test $skip = 1
        __fish_complete_path $cur
        return
    end
    switch "$cur"
        case '-*'
            __stptunnel_flags $cmd
        case '*'
            set -l words (__stptunnel_words $cmd)
            if set -q words[1]
                printf '%s\n' $words
            else
                __fish_complete_path $cur
            end
    end
end

complete -c stptunnel -f -a '(__stptunnel_complete)'
`
