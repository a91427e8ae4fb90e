// Package crilog reads and writes container logs in the CRI log format,
// the kubelet's and containerd's: one record per line,
//
//	<RFC3339Nano UTC time> <stdout|stderr> <F|P> <content>\n
//
// where P (partial) marks a piece of a line that was longer than the
// record limit (16 KiB of content, containerd's default) or that had no
// newline when its stream ended, and F ends a line. Concatenating the
// contents of a stream's records, with a newline after each F, gives back
// exactly the bytes the container wrote.
//
// Writer turns a container's stdout and stderr into records of one file;
// Printer turns records back into what `kubectl logs` shows (timestamps,
// since, limitBytes). Both are pure over an io.Writer and a clock: opening
// FIFOs and files is the runtime's, serving HTTP the agent server's.
package crilog
