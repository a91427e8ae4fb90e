package app

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"weir.dev/weir/cli"
)

// globals are the flags every client verb shares (kubectl's global flags).
type globals struct {
	flags cli.ConfigFlags
}

func (g *globals) register(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&g.flags.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.weir/config)")
	f.StringVar(&g.flags.Context, "context", "", "the kubeconfig context to use")
	f.StringVarP(&g.flags.Namespace, "namespace", "n", "", "the namespace scope for this request")
}

// kubectlError is an error already worded as kubectl prints it.
type kubectlError struct{ msg string }

func (e kubectlError) Error() string { return e.msg }

// run builds a client and runs a verb, turning its error into kubectl's
// wording.
func (g *globals) run(cmd *cobra.Command, verb func(ctx context.Context, c *cli.Client, s cli.Streams) error) error {
	c, err := cli.NewClient(g.flags)
	if err == nil {
		err = verb(cmd.Context(), c, streams(cmd))
	}
	if err == nil {
		return nil
	}
	var ec cli.ExitCodeError
	if errors.As(err, &ec) {
		return ec // main exits with the remote command's code
	}
	return kubectlError{msg: cli.FormatError(err)}
}

func streams(cmd *cobra.Command) cli.Streams {
	return cli.Streams{In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), ErrOut: cmd.ErrOrStderr()}
}

// addClientCommands adds kubectl's verbs and their global flags to root.
func addClientCommands(root *cobra.Command) {
	g := &globals{}
	g.register(root)
	root.AddCommand(
		newGetCommand(g), newDescribeCommand(g), newApplyCommand(g), newCreateCommand(g),
		newReplaceCommand(g), newDeleteCommand(g), newLabelCommand(g, false), newLabelCommand(g, true),
		newScaleCommand(g), newSetCommand(g), newRolloutCommand(g), newExposeCommand(g), newRunCommand(g),
		newLogsCommand(g), newExecCommand(g), newCordonCommand(g, true), newCordonCommand(g, false),
		newDrainCommand(g),
	)
}

func newGetCommand(g *globals) *cobra.Command {
	var o cli.GetOptions
	cmd := &cobra.Command{
		Use:   "get TYPE[.GROUP][/NAME] [NAME...]",
		Short: "Display one or many resources",
		Example: `  weir get pods -o wide
  weir get deploy nginx -o yaml
  weir get pods -l app=nginx -w`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.Get(ctx, s, o, args)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Output, "output", "o", "", "output format: wide, yaml, json, name, jsonpath=…")
	f.StringVarP(&o.Selector, "selector", "l", "", "label selector (e.g. -l key1=value1,key2=value2)")
	f.StringVar(&o.FieldSelector, "field-selector", "", "field selector (e.g. --field-selector spec.nodeName=n1)")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list across all namespaces")
	f.BoolVar(&o.ShowLabels, "show-labels", false, "show all labels as the last column")
	f.StringSliceVarP(&o.LabelColumns, "label-columns", "L", nil, "label keys to show as columns")
	f.BoolVar(&o.NoHeaders, "no-headers", false, "do not print headers")
	f.BoolVarP(&o.Watch, "watch", "w", false, "after listing, watch for changes")
	f.BoolVar(&o.WatchOnly, "watch-only", false, "watch for changes without listing first")
	f.BoolVar(&o.OutputWatchEvents, "output-watch-events", false, "print the event type of each watched change")
	f.BoolVar(&o.IgnoreNotFound, "ignore-not-found", false, "treat a missing named object as success")
	return cmd
}
