package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// user is the UID:GID the binaries run as: no root, no name to look up.
const user = "65532:65532"

// epoch is the time stamped on every file, so equal inputs give equal
// digests.
var epoch = time.Unix(0, 0).UTC()

// buildOne writes the image of im, whose binary is at bin, to
// o.Out/<name>.tar, using work for scratch files.
func buildOne(o options, im image, bin, work string) (built, error) {
	layerTar := filepath.Join(work, im.name+".layer.tar")
	if err := writeBinaryLayer(layerTar, bin, im.name); err != nil {
		return built{}, err
	}
	layer, err := tarball.LayerFromFile(layerTar, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return built{}, fmt.Errorf("reading the layer: %w", err)
	}
	img, err := assemble(o, im.name, layer)
	if err != nil {
		return built{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return built{}, fmt.Errorf("computing the manifest digest: %w", err)
	}
	ref := repository + "/" + im.name + ":" + o.Version
	dst := filepath.Join(o.Out, im.name+".tar")
	if err := writeArchive(img, ref, o.Version, dst, filepath.Join(work, im.name+".layout")); err != nil {
		return built{}, err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return built{}, err
	}
	return built{Name: im.name, Ref: ref, Path: dst, Size: st.Size(), Digest: digest}, nil
}

// assemble puts layer on an empty base and sets the config: entrypoint,
// user, platform and the OCI labels.
func assemble(o options, name string, layer v1.Layer) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", o.Arch
	cf.Config.Entrypoint = []string{"/" + name}
	cf.Config.User = user
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    name,
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Commit,
		"org.opencontainers.image.source":   sourceLabel,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the config: %w", err)
	}
	return img, nil
}

// writeBinaryLayer writes a layer tar holding bin as /<name>, mode 0755,
// owned by root.
func writeBinaryLayer(dst, bin, name string) error {
	src, err := os.Open(bin)
	if err != nil {
		return fmt.Errorf("opening the binary: %w", err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("creating the layer: %w", err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: st.Size(), ModTime: epoch, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, src); err != nil {
		return fmt.Errorf("writing the layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// writeArchive writes img as an OCI image layout in dir and tars it to
// dst. The index names the image twice: org.opencontainers.image.ref.name
// holds the tag, as the image-layout spec has it, and
// io.containerd.image.name the full reference, which importers that take
// a name from the archive read.
func writeArchive(img v1.Image, ref, tag, dst, dir string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("creating the image layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return fmt.Errorf("writing the image layout: %w", err)
	}
	tmp := dst + ".tmp"
	if err := tarDir(tmp, dir); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return os.Rename(tmp, dst)
}

// tarDir writes the tree under dir to the tar file dst, with paths
// relative to dir and fixed owners, modes and times.
func tarDir(dst, dir string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	root := os.DirFS(dir)
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name, hdr.ModTime, hdr.Format = name, epoch, tar.FormatPAX
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Mode = 0o644
		if d.IsDir() {
			hdr.Name, hdr.Mode = hdr.Name+"/", 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		r, err := root.Open(name)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(tw, r)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
