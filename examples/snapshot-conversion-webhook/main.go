// Command snapshot-conversion-webhook converts VolumeGroupSnapshotContents
// between groupsnapshot.storage.k8s.io v1, v1beta1 and v1beta2 for the API
// server, so that clients of the older v1beta1 API keep working once the
// CRD's spec.conversion points here. It accepts the upstream
// snapshot-conversion-webhook's flags and serves /convert and /readyz (and
// /healthz) over HTTPS, reloading its certificate when the files change.
// See docs/operations.md for deployment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/csi-kit/sidecars/internal/cmdutil"
	"github.com/csi-kit/sidecars/snapshotter/conversion"
)

const name = "snapshot-conversion-webhook"

type flags struct {
	certFile, keyFile string
	port              int
}

func register(fs *flag.FlagSet, f *flags) {
	fs.StringVar(&f.certFile, "tls-cert-file", "", "File containing the x509 certificate for HTTPS (intermediate certificates, if any, concatenated after it). Required. Reloaded when it changes.")
	fs.StringVar(&f.keyFile, "tls-private-key-file", "", "File containing the x509 private key matching --tls-cert-file. Required. Reloaded when it changes.")
	fs.IntVar(&f.port, "port", 443, "Secure port that the webhook listens on.")
}

// check reports every bad flag at once.
func (f flags) check() error {
	var errs []error
	if f.certFile == "" {
		errs = append(errs, errors.New("--tls-cert-file must be specified"))
	}
	if f.keyFile == "" {
		errs = append(errs, errors.New("--tls-private-key-file must be specified"))
	}
	if f.port < 1 || f.port > 65535 {
		errs = append(errs, fmt.Errorf("--port=%d: want 1 to 65535", f.port))
	}
	return errors.Join(errs...)
}

func main() {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	var basic cmdutil.Basic
	cmdutil.RegisterBasic(fs, &basic)
	var f flags
	register(fs, &f)
	cmdutil.Parse(fs, os.Args[1:])
	if err := f.check(); err != nil && !basic.ShowVersion {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	os.Exit(cmdutil.MainBasic(name, &basic, func(ctx context.Context) error {
		srv, err := conversion.New(conversion.Options{
			CertFile: f.certFile,
			KeyFile:  f.keyFile,
			Address:  net.JoinHostPort("", strconv.Itoa(f.port)),
		})
		if err != nil {
			return err
		}
		return srv.Run(ctx)
	}))
}
