// Package printers holds kubectl's table columns for every kind weir serves
// and the text layout kubectl gives those tables. It is the one source of
// truth for columns: the API server answers Accept
// "application/json;as=Table;v=v1;g=meta.k8s.io" with TableFor, and
// `weir get` prints the Tables it receives with Printer.
//
// Everything here is pure: the clock is a parameter, and nothing does I/O
// except writing to the io.Writer it is given. It must not depend on the
// API server or on a client.
package printers
