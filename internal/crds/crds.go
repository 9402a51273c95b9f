// Package crds installs CustomResourceDefinitions from YAML files: server
// side applied, then waited for until Established and served by discovery.
// snapshotter.InstallCRDs and the test control plane both use it.
package crds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{
	Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions",
}

// Options tune Install.
type Options struct {
	// FieldManager of the server-side apply; required.
	FieldManager string
	// IgnoreOtherKinds skips documents that are not CustomResourceDefinitions;
	// by default they are an error.
	IgnoreOtherKinds bool
	// Wait bounds the wait for every CRD together; default one minute.
	Wait time.Duration
}

// Install applies every CustomResourceDefinition in the *.yaml and *.yml
// files of dirs (server-side apply, so re-installing is fine) and waits
// until each is Established and listed by discovery. Files may hold several
// documents; kustomization.yaml is skipped. Subdirectories are not read.
func Install(ctx context.Context, cfg *rest.Config, opts Options, dirs ...string) error {
	if opts.FieldManager == "" {
		return errors.New("installing CRDs: no field manager")
	}
	if opts.Wait <= 0 {
		opts.Wait = time.Minute
	}
	crds, err := readCRDs(dirs, opts.IgnoreOtherKinds)
	if err != nil {
		return err
	}
	if len(crds) == 0 {
		return fmt.Errorf("no CustomResourceDefinition in %s", strings.Join(dirs, ", "))
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}
	defer hc.CloseIdleConnections()
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}
	disco, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, hc)
	if err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}
	client := dyn.Resource(crdResource)
	for _, crd := range crds {
		_, err := client.Apply(ctx, crd.obj.GetName(), crd.obj,
			metav1.ApplyOptions{FieldManager: opts.FieldManager, Force: true})
		if err != nil {
			return fmt.Errorf("applying CRD %s from %s: %w", crd.obj.GetName(), crd.file, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Wait)
	defer cancel()
	for _, crd := range crds {
		if err := waitCRD(ctx, client, disco, crd.obj.GetName()); err != nil {
			return fmt.Errorf("CRD %s from %s: %w", crd.obj.GetName(), crd.file, err)
		}
	}
	return nil
}

type crdFile struct {
	file string
	obj  *unstructured.Unstructured
}

func readCRDs(dirs []string, ignoreOtherKinds bool) ([]crdFile, error) {
	var crds []crdFile
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading CRD directory: %w", err)
		}
		for _, e := range entries { // sorted by name
			name := e.Name()
			ext := filepath.Ext(name)
			if e.IsDir() || (ext != ".yaml" && ext != ".yml") || strings.EqualFold(name, "kustomization.yaml") {
				continue
			}
			file := filepath.Join(dir, name)
			objs, err := decodeCRDFile(file, ignoreOtherKinds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			for _, obj := range objs {
				crds = append(crds, crdFile{file: file, obj: obj})
			}
		}
	}
	return crds, nil
}

// decodeCRDFile returns the CRDs in a YAML file of one or more documents;
// any other kind is an error unless ignoreOtherKinds.
func decodeCRDFile(file string, ignoreOtherKinds bool) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for i, doc := range splitYAML(data) {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(obj.Object) == 0 {
			continue // only comments
		}
		if gvk := obj.GroupVersionKind(); gvk.Group != crdResource.Group || gvk.Kind != "CustomResourceDefinition" {
			if ignoreOtherKinds {
				continue
			}
			return nil, fmt.Errorf("document %d is a %s, not a CustomResourceDefinition", i+1, gvk)
		}
		if obj.GetName() == "" {
			return nil, fmt.Errorf("document %d: CustomResourceDefinition without a name", i+1)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// splitYAML splits a YAML stream at its "---" document separators.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.Write(line)
	}
	return append(docs, cur.Bytes())
}

// waitCRD polls until the CRD is Established and its served versions list
// its resource in discovery.
func waitCRD(ctx context.Context, client dynamic.ResourceInterface, disco discovery.DiscoveryInterface, name string) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		obj, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		if !crdCondition(obj, "Established") {
			last = errors.New("not Established yet")
			if crdConditionFalse(obj, "NamesAccepted") {
				return false, errors.New("names not accepted (conflict with another CRD?)")
			}
			return false, nil
		}
		group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
		plural, _, _ := unstructured.NestedString(obj.Object, "status", "acceptedNames", "plural")
		versions, _, _ := unstructured.NestedSlice(obj.Object, "spec", "versions")
		for _, v := range versions {
			v, _ := v.(map[string]any)
			if served, _ := v["served"].(bool); !served {
				continue
			}
			version, _ := v["name"].(string)
			list, err := disco.ServerResourcesForGroupVersion(group + "/" + version)
			if err != nil && !apierrors.IsNotFound(err) {
				last = err
				return false, nil
			}
			if err != nil || !slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == plural }) {
				last = fmt.Errorf("%s/%s %s not in discovery yet", group, version, plural)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}

func crdCondition(obj *unstructured.Unstructured, typ string) bool {
	return conditionStatus(obj, typ) == "True"
}

func crdConditionFalse(obj *unstructured.Unstructured, typ string) bool {
	return conditionStatus(obj, typ) == "False"
}

func conditionStatus(obj *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		c, _ := c.(map[string]any)
		if c["type"] == typ {
			s, _ := c["status"].(string)
			return s
		}
	}
	return ""
}
