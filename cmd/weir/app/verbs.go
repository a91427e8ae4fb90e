package app

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"weir.dev/weir/cli"
)

// fileFlags registers -f, -R and --dry-run.
func fileFlags(f *pflag.FlagSet, o *cli.FileOptions, dry *string, required bool) {
	usage := "files, directories or - (stdin) holding the manifests"
	f.StringSliceVarP(&o.Filenames, "filename", "f", nil, usage)
	f.BoolVarP(&o.Recursive, "recursive", "R", false, "process directories recursively")
	f.StringVar(dry, "dry-run", "none", `"none", "server" or "client": only print (client) or only validate on the server (server)`)
	f.Lookup("dry-run").NoOptDefVal = "client"
	f.StringVarP(&o.Output, "output", "o", "", "name: print only kind/name")
}

func withDryRun(dry string, set func(cli.DryRun)) error {
	d, err := cli.ParseDryRun(dry)
	if err != nil {
		return err
	}
	set(d)
	return nil
}

func newDescribeCommand(g *globals) *cobra.Command {
	var o cli.DescribeOptions
	cmd := &cobra.Command{
		Use:   "describe TYPE [NAME...] | TYPE/NAME",
		Short: "Show details of a resource or group of resources",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.Describe(ctx, s, o, args)
			})
		},
	}
	cmd.Flags().StringVarP(&o.Selector, "selector", "l", "", "label selector")
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "across all namespaces")
	cmd.Flags().BoolVar(&o.ShowEvents, "show-events", true, "show the object's events")
	return cmd
}

func fileCommand(g *globals, use, short string, do func(c *cli.Client) func(context.Context, cli.Streams, cli.FileOptions) error) *cobra.Command {
	var (
		o   cli.FileOptions
		dry string
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return do(c)(ctx, s, o)
			})
		},
	}
	fileFlags(cmd.Flags(), &o, &dry, true)
	return cmd
}

func newApplyCommand(g *globals) *cobra.Command {
	return fileCommand(g, "apply -f FILENAME", "Apply a configuration to resources by file name or stdin (client-side three-way merge)",
		func(c *cli.Client) func(context.Context, cli.Streams, cli.FileOptions) error { return c.Apply })
}

func newReplaceCommand(g *globals) *cobra.Command {
	return fileCommand(g, "replace -f FILENAME", "Replace resources by file name or stdin",
		func(c *cli.Client) func(context.Context, cli.Streams, cli.FileOptions) error { return c.Replace })
}

func newCreateCommand(g *globals) *cobra.Command {
	cmd := fileCommand(g, "create -f FILENAME", "Create resources from a file or stdin",
		func(c *cli.Client) func(context.Context, cli.Streams, cli.FileOptions) error { return c.Create })
	var dry string
	ns := &cobra.Command{
		Use:   "namespace NAME",
		Short: "Create a namespace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				d, err := cli.ParseDryRun(dry)
				if err != nil {
					return err
				}
				return c.CreateNamespace(ctx, s, args[0], d)
			})
		},
	}
	ns.Aliases = []string{"ns"}
	ns.Flags().StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	var (
		images   []string
		replicas int32
		port     int32
		ddry     string
	)
	dep := &cobra.Command{
		Use:     "deployment NAME --image=IMAGE",
		Aliases: []string{"deploy"},
		Short:   "Create a deployment",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				d, err := cli.ParseDryRun(ddry)
				if err != nil {
					return err
				}
				return c.CreateDeployment(ctx, s, args[0], images, replicas, port, d)
			})
		},
	}
	dep.Flags().StringSliceVar(&images, "image", nil, "image(s) to run")
	dep.Flags().Int32VarP(&replicas, "replicas", "r", 1, "number of replicas")
	dep.Flags().Int32Var(&port, "port", -1, "the container port to expose")
	dep.Flags().StringVar(&ddry, "dry-run", "none", `"none", "server" or "client"`)
	cmd.AddCommand(ns, dep, newCreateSecretCommand(g))
	return cmd
}

// newCreateSecretCommand is kubectl's create secret docker-registry and
// generic (--from-literal).
func newCreateSecretCommand(g *globals) *cobra.Command {
	secret := &cobra.Command{Use: "secret", Short: "Create a secret: docker-registry or generic", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() }}
	create := func(cmd *cobra.Command, dry string, make func() (*corev1.Secret, error)) error {
		return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
			d, err := cli.ParseDryRun(dry)
			if err != nil {
				return err
			}
			sec, err := make()
			if err != nil {
				return err
			}
			return c.CreateSecret(ctx, s, sec, d)
		})
	}
	var server, user, password, email, rdry string
	reg := &cobra.Command{
		Use:   "docker-registry NAME --docker-username=USER --docker-password=PASSWORD [--docker-server=SERVER] [--docker-email=EMAIL]",
		Short: "Create a secret for pulling images from a registry (type kubernetes.io/dockerconfigjson)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return create(cmd, rdry, func() (*corev1.Secret, error) {
				return cli.DockerRegistrySecret(args[0], server, user, password, email)
			})
		},
	}
	rf := reg.Flags()
	rf.StringVar(&server, "docker-server", "https://index.docker.io/v1/", "server location for the registry")
	rf.StringVar(&user, "docker-username", "", "username for registry authentication")
	rf.StringVar(&password, "docker-password", "", "password for registry authentication")
	rf.StringVar(&email, "docker-email", "", "email for the registry")
	rf.StringVar(&rdry, "dry-run", "none", `"none", "server" or "client"`)
	_ = reg.MarkFlagRequired("docker-username")
	_ = reg.MarkFlagRequired("docker-password")
	var literals []string
	var typ, gdry string
	gen := &cobra.Command{
		Use:   "generic NAME --from-literal=KEY=VALUE ...",
		Short: "Create a secret from literal values",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return create(cmd, gdry, func() (*corev1.Secret, error) { return cli.GenericSecret(args[0], typ, literals) })
		},
	}
	gen.Flags().StringArrayVar(&literals, "from-literal", nil, "a key and literal value to insert (KEY=VALUE; repeatable)")
	gen.Flags().StringVar(&typ, "type", "", "the type of secret to create (default Opaque)")
	gen.Flags().StringVar(&gdry, "dry-run", "none", `"none", "server" or "client"`)
	secret.AddCommand(reg, gen)
	return secret
}

func newDeleteCommand(g *globals) *cobra.Command {
	var (
		o   cli.DeleteOptions
		dry string
	)
	cmd := &cobra.Command{
		Use:   "delete ([-f FILENAME] | TYPE [(NAME | -l label | --all)])",
		Short: "Delete resources by file names, stdin, resources and names, or by resources and label selector",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return c.Delete(ctx, s, o, args)
			})
		},
	}
	f := cmd.Flags()
	fileFlags(f, &o.FileOptions, &dry, false)
	f.StringVarP(&o.Selector, "selector", "l", "", "label selector")
	f.BoolVar(&o.All, "all", false, "delete all resources of the types in the namespace")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "across all namespaces")
	f.IntVar(&o.GracePeriod, "grace-period", -1, "seconds given to the resource to terminate gracefully (-1: its own default)")
	f.BoolVar(&o.Now, "now", false, "signal resources for immediate shutdown (--grace-period=1)")
	f.BoolVar(&o.Force, "force", false, "immediate deletion (--grace-period=0)")
	f.StringVar(&o.Cascade, "cascade", "background", `"background", "orphan" or "foreground"`)
	f.Lookup("cascade").NoOptDefVal = "background"
	f.BoolVar(&o.Wait, "wait", true, "wait for resources to be gone before returning")
	f.DurationVar(&o.Timeout, "timeout", 0, "how long to wait for the deletion (0: no limit)")
	f.BoolVar(&o.IgnoreNotFound, "ignore-not-found", false, "treat a missing resource as deleted")
	return cmd
}

func newLabelCommand(g *globals, annotate bool) *cobra.Command {
	var (
		o   cli.MetaOptions
		dry string
	)
	use, short := "label TYPE NAME KEY_1=VAL_1 ... KEY_N=VAL_N | KEY-", "Update the labels on a resource"
	if annotate {
		use, short = "annotate TYPE NAME KEY_1=VAL_1 ... KEY_N=VAL_N | KEY-", "Update the annotations on a resource"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return c.Label(ctx, s, o, args, annotate)
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Overwrite, "overwrite", false, "allow existing keys to change value")
	f.StringVarP(&o.Selector, "selector", "l", "", "label selector")
	f.BoolVar(&o.All, "all", false, "every resource of the type in the namespace")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "across all namespaces")
	f.StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	return cmd
}

func newScaleCommand(g *globals) *cobra.Command {
	var (
		o   cli.ScaleOptions
		dry string
	)
	cmd := &cobra.Command{
		Use:   "scale --replicas=COUNT (TYPE NAME | TYPE/NAME)",
		Short: "Set a new size for a deployment, replica set or stateful set",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return c.Scale(ctx, s, o, args)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Replicas, "replicas", -1, "the new number of replicas")
	f.IntVar(&o.CurrentReplicas, "current-replicas", -1, "precondition: the current number of replicas")
	f.StringVarP(&o.Selector, "selector", "l", "", "label selector")
	f.BoolVar(&o.All, "all", false, "every resource of the type in the namespace")
	f.StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	return cmd
}

func newSetCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "set SUBCOMMAND", Short: "Set specific features on objects"}
	var dry string
	img := &cobra.Command{
		Use:   "image (TYPE NAME | TYPE/NAME) CONTAINER_NAME_1=CONTAINER_IMAGE_1 ...",
		Short: "Update the image of a pod template",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				d, err := cli.ParseDryRun(dry)
				if err != nil {
					return err
				}
				return c.SetImage(ctx, s, d, args)
			})
		},
	}
	img.Flags().StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	cmd.AddCommand(img)
	return cmd
}

func newRolloutCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rollout SUBCOMMAND", Short: "Manage the rollout of a deployment"}
	var (
		watch    bool
		timeout  time.Duration
		revision int64
		dry      string
		histRev  int64
	)
	status := &cobra.Command{
		Use:   "status (TYPE NAME | TYPE/NAME)",
		Short: "Show the status of the rollout",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.RolloutStatus(ctx, s, args, watch, timeout)
			})
		},
	}
	status.Flags().BoolVarP(&watch, "watch", "w", true, "watch the rollout until it finishes")
	status.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait (0: no limit)")
	history := &cobra.Command{
		Use:   "history (TYPE NAME | TYPE/NAME)",
		Short: "View rollout history",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.RolloutHistory(ctx, s, args, histRev)
			})
		},
	}
	history.Flags().Int64Var(&histRev, "revision", 0, "show the pod template of this revision")
	undo := &cobra.Command{
		Use:   "undo (TYPE NAME | TYPE/NAME) [--to-revision=N]",
		Short: "Undo a previous rollout",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				d, err := cli.ParseDryRun(dry)
				if err != nil {
					return err
				}
				return c.RolloutUndo(ctx, s, args, revision, d)
			})
		},
	}
	undo.Flags().Int64Var(&revision, "to-revision", 0, "the revision to roll back to (0: the previous one)")
	undo.Flags().StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	pause := &cobra.Command{
		Use:   "pause (TYPE NAME | TYPE/NAME)",
		Short: "Mark the resource as paused",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.RolloutPause(ctx, s, args, true)
			})
		},
	}
	resume := &cobra.Command{
		Use:   "resume (TYPE NAME | TYPE/NAME)",
		Short: "Resume a paused resource",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.RolloutPause(ctx, s, args, false)
			})
		},
	}
	restart := &cobra.Command{
		Use:   "restart (TYPE NAME | TYPE/NAME)",
		Short: "Restart a resource",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.RolloutRestart(ctx, s, args, time.Now())
			})
		},
	}
	cmd.AddCommand(status, history, undo, pause, resume, restart)
	return cmd
}

func newExposeCommand(g *globals) *cobra.Command {
	var (
		o   cli.ExposeOptions
		dry string
	)
	cmd := &cobra.Command{
		Use:   "expose (TYPE NAME | TYPE/NAME) [--port=port] [--target-port=port] [--type=type] [--name=name]",
		Short: "Expose a deployment, replica set, pod or service as a new Service",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return c.Expose(ctx, s, o, args)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "the name of the new Service")
	f.StringVar(&o.Port, "port", "", "the port the Service serves on")
	f.StringVar(&o.TargetPort, "target-port", "", "the port (number or name) on the pods")
	f.StringVar(&o.Protocol, "protocol", "", "TCP (default), UDP or SCTP")
	f.StringVar(&o.Type, "type", "", "ClusterIP (default), NodePort, LoadBalancer or ExternalName")
	f.StringVar(&o.Selector, "selector", "", "label selector for the Service (default: the resource's)")
	f.StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	return cmd
}

func newRunCommand(g *globals) *cobra.Command {
	var (
		o   cli.RunOptions
		dry string
	)
	cmd := &cobra.Command{
		Use:   "run NAME --image=image [--env=\"key=value\"] [--port=port] [-- [COMMAND] [args...]]",
		Short: "Run a particular image in a pod",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return c.Run(ctx, s, o, args[0], args[1:])
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Image, "image", "", "the image for the container")
	f.IntVar(&o.Port, "port", -1, "the port the container exposes")
	f.StringVarP(&o.Labels, "labels", "l", "", "comma-separated labels (default run=NAME)")
	f.StringArrayVar(&o.Env, "env", nil, "environment variables (key=value)")
	f.StringVar(&o.Restart, "restart", "Always", "Always, OnFailure or Never")
	f.BoolVar(&o.Command, "command", false, "the arguments after -- are the command, not args")
	f.StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	return cmd
}

func newLogsCommand(g *globals) *cobra.Command {
	var o cli.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs POD | TYPE/NAME [-c CONTAINER]",
		Short: "Print the logs for a container in a pod",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.Logs(ctx, s, o, args)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Container, "container", "c", "", "the container")
	f.BoolVarP(&o.Follow, "follow", "f", false, "stream the log")
	f.BoolVarP(&o.Previous, "previous", "p", false, "the previous instance of the container")
	f.Int64Var(&o.TailLines, "tail", -1, "lines of recent log to show (-1: all)")
	f.BoolVar(&o.Timestamps, "timestamps", false, "include timestamps on each line in the log output")
	f.DurationVar(&o.Since, "since", 0, "only return logs newer than a relative duration like 5s, 2m, or 3h; only one of since-time / since may be used")
	f.StringVar(&o.SinceTime, "since-time", "", "only return logs after a specific date (RFC3339); only one of since-time / since may be used")
	return cmd
}

func newExecCommand(g *globals) *cobra.Command {
	var o cli.ExecOptions
	cmd := &cobra.Command{
		Use:   "exec POD [-c CONTAINER] [-i] [-t] -- COMMAND [args...]",
		Short: "Execute a command in a container",
		Example: `  weir exec web -- date
  weir exec -it web -c app -- sh`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d := cmd.ArgsLenAtDash(); d != 0 && d != 1 && len(args) > 1 {
				return kubectlError{msg: "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead"}
			}
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				return c.Exec(ctx, s, o, args)
			})
		},
	}
	cmd.Flags().StringVarP(&o.Container, "container", "c", "", "the container (default: the only one, or the kubectl.kubernetes.io/default-container annotation's)")
	cmd.Flags().BoolVarP(&o.Stdin, "stdin", "i", false, "pass stdin to the container")
	cmd.Flags().BoolVarP(&o.TTY, "tty", "t", false, "stdin is a TTY")
	return cmd
}

func newCordonCommand(g *globals, cordon bool) *cobra.Command {
	use, short := "cordon NODE", "Mark node as unschedulable"
	if !cordon {
		use, short = "uncordon NODE", "Mark node as schedulable"
	}
	var dry string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				d, err := cli.ParseDryRun(dry)
				if err != nil {
					return err
				}
				return c.Cordon(ctx, s, args, cordon, d)
			})
		},
	}
	cmd.Flags().StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	return cmd
}

func newDrainCommand(g *globals) *cobra.Command {
	var (
		o   cli.DrainOptions
		dry string
	)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Drain node in preparation for maintenance",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.run(cmd, func(ctx context.Context, c *cli.Client, s cli.Streams) error {
				if err := withDryRun(dry, func(d cli.DryRun) { o.DryRun = d }); err != nil {
					return err
				}
				return c.Drain(ctx, s, o, args[0])
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.Force, "force", false, "continue even if there are pods that do not declare a controller")
	f.BoolVar(&o.IgnoreDaemonSets, "ignore-daemonsets", false, "ignore DaemonSet-managed pods")
	f.BoolVar(&o.DeleteEmptyDirData, "delete-emptydir-data", false, "continue even if there are pods using emptyDir")
	f.IntVar(&o.GracePeriod, "grace-period", -1, "seconds each pod is given to terminate (-1: its own)")
	f.DurationVar(&o.Timeout, "timeout", 0, "how long to wait before giving up (0: no limit)")
	f.StringVarP(&o.Selector, "pod-selector", "", "", "label selector for the pods to evict")
	f.StringVar(&dry, "dry-run", "none", `"none", "server" or "client"`)
	return cmd
}
