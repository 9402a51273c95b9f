package explaincmd

import (
	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeFlags registers the kubeconfig flags: kubectl's names for the ones a
// read-only report needs. Each one fills loading or overrides, which
// clientConfig hands to clientcmd.
func kubeFlags(loading *clientcmd.ClientConfigLoadingRules, ov *clientcmd.ConfigOverrides) *pflag.FlagSet {
	fs := pflag.NewFlagSet("kubeconfig", pflag.ContinueOnError)
	fs.StringVar(&loading.ExplicitPath, "kubeconfig", "", "Path to the kubeconfig file; default: $KUBECONFIG, else ~/.kube/config, else the pod's service account.")
	fs.StringVar(&ov.CurrentContext, "context", "", "The name of the kubeconfig context to use.")
	fs.StringVar(&ov.Context.Cluster, "cluster", "", "The name of the kubeconfig cluster to use.")
	fs.StringVar(&ov.Context.AuthInfo, "user", "", "The name of the kubeconfig user to use.")
	fs.StringVarP(&ov.Context.Namespace, "namespace", "n", "", "The namespace; default: the context's, else \"default\".")
	fs.StringVarP(&ov.ClusterInfo.Server, "server", "s", "", "The address and port of the Kubernetes API server (--master is another name).")
	fs.StringVar(&ov.ClusterInfo.CertificateAuthority, "certificate-authority", "", "Path to a cert file for the certificate authority.")
	fs.BoolVar(&ov.ClusterInfo.InsecureSkipTLSVerify, "insecure-skip-tls-verify", false, "If true, the server's certificate is not checked: the connection is insecure.")
	fs.StringVar(&ov.AuthInfo.Token, "token", "", "Bearer token for authentication to the API server.")
	fs.StringVar(&ov.AuthInfo.Impersonate, "as", "", "Username to impersonate for the reads.")
	fs.StringArrayVar(&ov.AuthInfo.ImpersonateGroups, "as-group", nil, "Group to impersonate for the reads; repeat for several groups.")
	fs.StringVar(&ov.Timeout, "request-timeout", "", "How long to wait for each server request (e.g. 10s, 1m); empty or 0: no limit.")
	return fs
}

// clientConfig reads the kubeconfig the way kubectl does, with the flags
// on top. Nothing is read until the config is asked for.
func (o *options) clientConfig() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(o.loading, &o.overrides)
}
