package validation

import (
	"path"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

var validHostPathTypes = []corev1.HostPathType{
	corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket,
	corev1.HostPathCharDev, corev1.HostPathBlockDev,
}

// validateVolumes checks the Pod's volumes and returns the valid ones by
// name, for the mounts to refer to.
func validateVolumes(vols []corev1.Volume, fld *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var errs field.ErrorList
	byName := map[string]corev1.VolumeSource{}
	for i, v := range vols {
		p := fld.Index(i)
		namePath := p.Child("name")
		el := validateVolumeSource(&v.VolumeSource, p)
		if v.Name == "" {
			el = append(el, field.Required(namePath, ""))
		} else {
			el = append(el, validateDNS1123Label(v.Name, namePath)...)
		}
		if _, dup := byName[v.Name]; dup {
			el = append(el, field.Duplicate(namePath, v.Name))
		}
		if len(el) == 0 {
			byName[v.Name] = v.VolumeSource
		}
		errs = append(errs, el...)
	}
	return byName, errs
}

// validateVolumeSource requires exactly one volume type and checks the
// types weir's node agent can provide, and the common claim types.
func validateVolumeSource(src *corev1.VolumeSource, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	rv := reflect.ValueOf(src).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		if rv.Field(i).IsNil() {
			continue
		}
		name := jsonName(rt.Field(i))
		if n > 0 {
			errs = append(errs, field.Forbidden(fld.Child(name), "may not specify more than 1 volume type"))
			continue
		}
		n++
		errs = append(errs, validateVolumeType(src, name, fld.Child(name))...)
	}
	if n == 0 {
		errs = append(errs, field.Required(fld, "must specify a volume type"))
	}
	return errs
}

func validateVolumeType(src *corev1.VolumeSource, name string, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch name {
	case "hostPath":
		hp := src.HostPath
		if hp.Path == "" {
			return field.ErrorList{field.Required(fld.Child("path"), "")}
		}
		errs = append(errs, validatePathNoBacksteps(hp.Path, fld.Child("path"))...)
		if hp.Type != nil && !slices.Contains(validHostPathTypes, *hp.Type) {
			errs = append(errs, field.NotSupported(fld.Child("type"), *hp.Type, validHostPathTypes))
		}
	case "emptyDir":
		if sl := src.EmptyDir.SizeLimit; sl != nil && sl.Sign() < 0 {
			errs = append(errs, field.Forbidden(fld.Child("sizeLimit"), "SizeLimit field must be a valid resource quantity"))
		}
	case "secret":
		s := src.Secret
		if s.SecretName == "" {
			errs = append(errs, field.Required(fld.Child("secretName"), ""))
		}
		errs = append(errs, validateFileMode(s.DefaultMode, fld.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(s.Items, fld.Child("items"))...)
	case "configMap":
		c := src.ConfigMap
		if c.Name == "" {
			errs = append(errs, field.Required(fld.Child("name"), ""))
		}
		errs = append(errs, validateFileMode(c.DefaultMode, fld.Child("defaultMode"))...)
		errs = append(errs, validateKeyToPaths(c.Items, fld.Child("items"))...)
	case "persistentVolumeClaim":
		if src.PersistentVolumeClaim.ClaimName == "" {
			errs = append(errs, field.Required(fld.Child("claimName"), ""))
		}
	case "downwardAPI":
		d := src.DownwardAPI
		errs = append(errs, validateFileMode(d.DefaultMode, fld.Child("defaultMode"))...)
		for i := range d.Items {
			errs = append(errs, validateDownwardAPIFile(&d.Items[i], fld.Child("items").Index(i))...)
		}
	case "projected":
		errs = append(errs, validateProjected(src.Projected, fld)...)
	case "nfs":
		nfs := src.NFS
		if nfs.Server == "" {
			errs = append(errs, field.Required(fld.Child("server"), ""))
		}
		if nfs.Path == "" {
			errs = append(errs, field.Required(fld.Child("path"), ""))
		}
		if !path.IsAbs(nfs.Path) {
			errs = append(errs, field.Invalid(fld.Child("path"), nfs.Path, "must be an absolute path"))
		}
	case "csi":
		if src.CSI.Driver == "" {
			errs = append(errs, field.Required(fld.Child("driver"), ""))
		}
	case "ephemeral":
		if src.Ephemeral.VolumeClaimTemplate == nil {
			errs = append(errs, field.Required(fld.Child("volumeClaimTemplate"), ""))
		}
	case "image":
		img := src.Image
		if img.Reference == "" {
			errs = append(errs, field.Required(fld.Child("reference"), ""))
		}
		switch img.PullPolicy {
		case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		case "":
			errs = append(errs, field.Required(fld.Child("pullPolicy"), ""))
		default:
			errs = append(errs, field.NotSupported(fld.Child("pullPolicy"), img.PullPolicy, []corev1.PullPolicy{corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever}))
		}
	}
	return errs
}

func validateFileMode(mode *int32, fld *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fld, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, kp := range items {
		p := fld.Index(i)
		if kp.Key == "" {
			errs = append(errs, field.Required(p.Child("key"), ""))
		}
		if kp.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		}
		errs = append(errs, validateLocalNonReservedPath(kp.Path, p.Child("path"))...)
		errs = append(errs, validateFileMode(kp.Mode, p.Child("mode"))...)
	}
	return errs
}

func validateDownwardAPIFile(f *corev1.DownwardAPIVolumeFile, fld *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.Path == "" {
		errs = append(errs, field.Required(fld.Child("path"), ""))
	}
	errs = append(errs, validateLocalNonReservedPath(f.Path, fld.Child("path"))...)
	switch {
	case f.FieldRef != nil && f.ResourceFieldRef != nil:
		errs = append(errs, field.Invalid(fld, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
	case f.FieldRef != nil:
		errs = append(errs, validateObjectFieldSelector(f.FieldRef, validVolumeFieldPaths, fld.Child("fieldRef"))...)
	case f.ResourceFieldRef != nil:
		errs = append(errs, validateResourceFieldSelector(f.ResourceFieldRef, true, fld.Child("resourceFieldRef"))...)
	default:
		errs = append(errs, field.Required(fld, "one of fieldRef and resourceFieldRef is required"))
	}
	return append(errs, validateFileMode(f.Mode, fld.Child("mode"))...)
}

// Bounds on projected service account token lifetimes: shorter tokens
// would be refreshed constantly, longer ones defeat rotation.
const (
	minTokenAgeSeconds = 10 * 60
	maxTokenAgeSeconds = 1 << 32
)

func validateProjected(pv *corev1.ProjectedVolumeSource, fld *field.Path) field.ErrorList {
	errs := validateFileMode(pv.DefaultMode, fld.Child("defaultMode"))
	paths := map[string]bool{}
	for i, s := range pv.Sources {
		p := fld.Child("sources").Index(i)
		n := 0
		if s.Secret != nil {
			n++
			if s.Secret.Name == "" {
				errs = append(errs, field.Required(p.Child("secret", "name"), ""))
			}
			errs = append(errs, validateProjectedItems(s.Secret.Items, s.Secret.Name, paths, p.Child("secret", "items"), fld)...)
		}
		if s.ConfigMap != nil {
			n++
			if s.ConfigMap.Name == "" {
				errs = append(errs, field.Required(p.Child("configMap", "name"), ""))
			}
			errs = append(errs, validateProjectedItems(s.ConfigMap.Items, s.ConfigMap.Name, paths, p.Child("configMap", "items"), fld)...)
		}
		if s.DownwardAPI != nil {
			n++
			for j := range s.DownwardAPI.Items {
				f := &s.DownwardAPI.Items[j]
				errs = append(errs, validateDownwardAPIFile(f, p.Child("downwardAPI", "items").Index(j))...)
				if f.Path != "" {
					if paths[f.Path] {
						errs = append(errs, field.Invalid(fld, f.Path, "conflicting duplicate paths"))
					}
					paths[f.Path] = true
				}
			}
		}
		if t := s.ServiceAccountToken; t != nil {
			n++
			tp := p.Child("serviceAccountToken")
			if t.ExpirationSeconds != nil {
				if *t.ExpirationSeconds < minTokenAgeSeconds {
					errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
				}
				if *t.ExpirationSeconds > maxTokenAgeSeconds {
					errs = append(errs, field.Invalid(tp.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration larger than 2^32 seconds"))
				}
			}
			if t.Path == "" {
				errs = append(errs, field.Required(tp.Child("path"), ""))
			}
		}
		if s.ClusterTrustBundle != nil {
			n++
		}
		if s.PodCertificate != nil {
			n++
		}
		if n != 1 {
			errs = append(errs, field.Forbidden(p, "may not specify more than 1 volume type per source"))
		}
	}
	return errs
}

func validateProjectedItems(items []corev1.KeyToPath, source string, paths map[string]bool, itemsPath, volPath *field.Path) field.ErrorList {
	errs := validateKeyToPaths(items, itemsPath)
	for _, kp := range items {
		if kp.Path == "" {
			continue
		}
		if paths[kp.Path] {
			errs = append(errs, field.Invalid(volPath, source, "conflicting duplicate paths"))
		}
		paths[kp.Path] = true
	}
	return errs
}
