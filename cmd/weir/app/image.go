package app

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"weir.dev/weir/nodeagent/localcluster"
)

func newImageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the images of a cluster started with weir up",
	}
	cmd.AddCommand(newImageImportCommand(), newImageListCommand(), newImageBuildCommand())
	return cmd
}

func newImageImportCommand() *cobra.Command {
	var (
		dataDir string
		nodes   []string
	)
	cmd := &cobra.Command{
		Use:   "import FILE.tar",
		Short: "Load an image tarball (OCI layout or docker save archive) into every node of the local cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := localcluster.OpenImages(dataDir, nodes)
			if err != nil {
				return err
			}
			defer s.Close()
			imported, err := s.Import(cmd.Context(), args[0])
			for _, node := range s.Nodes() {
				for _, name := range imported[node] {
					fmt.Fprintf(cmd.OutOrStdout(), "imported %s on %s\n", name, node)
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/weir", "the data dir weir up used")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "only this node (repeatable; default: every node)")
	return cmd
}

func newImageListCommand() *cobra.Command {
	var (
		dataDir string
		nodes   []string
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the images on the nodes of the local cluster",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := localcluster.OpenImages(dataDir, nodes)
			if err != nil {
				return err
			}
			defer s.Close()
			imgs, err := s.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "NODE\tIMAGE\tDIGEST\tSIZE\tSOURCE")
			for _, img := range imgs {
				src := "pulled"
				if img.Imported {
					src = "imported"
				}
				size := "?"
				if img.Size >= 0 {
					size = humanSize(img.Size)
				}
				digest := strings.TrimPrefix(img.Digest, "sha256:")
				if len(digest) > 12 {
					digest = digest[:12]
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", img.Node, img.Name, digest, size, src)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/weir", "the data dir weir up used")
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "only this node (repeatable; default: every node)")
	return cmd
}

func newImageBuildCommand() *cobra.Command {
	var out, busybox, echo string
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Write the test images (weir.local/busybox, weir.local/echo) as OCI tarballs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := localcluster.WriteTestImages(out, busybox, echo)
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "bin/images", "directory to write busybox.tar and echo.tar into")
	cmd.Flags().StringVar(&busybox, "busybox", "/bin/busybox", "static busybox to pack (Debian's busybox-static)")
	cmd.Flags().StringVar(&echo, "echo-binary", "", "static weir-echo binary to pack as weir.local/echo (none: only busybox)")
	return cmd
}

// humanSize renders n bytes as the docker CLI does (1000-based).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
