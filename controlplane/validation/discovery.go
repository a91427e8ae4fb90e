package validation

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// EndpointSlice size limits, as Kubernetes has them: slices are kept small
// so that one endpoint change does not resend thousands of endpoints to
// every node.
const (
	maxSliceEndpoints      = 1000
	maxEndpointAddresses   = 100
	maxSlicePorts          = 20000
	maxTopologyLabels      = 16
	maxEndpointHintEntries = 8
)

var supportedAddressTypes = []discoveryv1.AddressType{discoveryv1.AddressTypeFQDN, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}

func validateEndpointSlice(es, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := validateMeta(&es.ObjectMeta, oldMeta(old), true, nameIsDNSSubdomain, field.NewPath("metadata"))
	atPath := field.NewPath("addressType")
	switch {
	case es.AddressType == "":
		errs = append(errs, field.Required(atPath, ""))
	case !slices.Contains(supportedAddressTypes, es.AddressType):
		errs = append(errs, field.NotSupported(atPath, es.AddressType, supportedAddressTypes))
	}
	errs = append(errs, validateSliceEndpoints(es.Endpoints, es.AddressType, field.NewPath("endpoints"))...)
	errs = append(errs, validateSlicePorts(es.Ports, field.NewPath("ports"))...)
	if old != nil {
		// Consumers index slices by address type.
		errs = append(errs, validateImmutable(es.AddressType, old.AddressType, atPath)...)
	}
	return errs
}

func validateSliceEndpoints(eps []discoveryv1.Endpoint, addrType discoveryv1.AddressType, fld *field.Path) field.ErrorList {
	if len(eps) > maxSliceEndpoints {
		return field.ErrorList{field.TooMany(fld, len(eps), maxSliceEndpoints)}
	}
	var errs field.ErrorList
	for i, ep := range eps {
		p := fld.Index(i)
		addrPath := p.Child("addresses")
		switch {
		case len(ep.Addresses) == 0:
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		case len(ep.Addresses) > maxEndpointAddresses:
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxEndpointAddresses))
		}
		for j, a := range ep.Addresses {
			ap := addrPath.Index(j)
			switch addrType {
			case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
				if ipErrs := validateIP(a, ap); len(ipErrs) > 0 {
					errs = append(errs, ipErrs...)
					continue
				}
				if (addrType == discoveryv1.AddressTypeIPv6) != isIPv6(a) {
					errs = append(errs, field.Invalid(ap, a, "must be an "+string(addrType)+" address"))
					continue
				}
				errs = append(errs, validateNonSpecialIP(a, ap)...)
			case discoveryv1.AddressTypeFQDN:
				errs = append(errs, validation.IsFullyQualifiedDomainName(ap, a)...)
			}
		}
		if ep.NodeName != nil {
			errs = append(errs, validateName(*ep.NodeName, nameIsDNSSubdomain, p.Child("nodeName"))...)
		}
		topoPath := p.Child("deprecatedTopology")
		if len(ep.DeprecatedTopology) > maxTopologyLabels {
			errs = append(errs, field.TooMany(topoPath, len(ep.DeprecatedTopology), maxTopologyLabels))
		}
		errs = append(errs, metavalidation.ValidateLabels(ep.DeprecatedTopology, topoPath)...)
		if _, ok := ep.DeprecatedTopology[corev1.LabelTopologyZone]; ok {
			// The zone has its own field; the label would contradict it.
			errs = append(errs, field.Invalid(topoPath.Key(corev1.LabelTopologyZone), ep.DeprecatedTopology[corev1.LabelTopologyZone], "must not be set, use zone instead"))
		}
		if ep.Hostname != nil {
			errs = append(errs, validateDNS1123Label(*ep.Hostname, p.Child("hostname"))...)
		}
		if h := ep.Hints; h != nil {
			hp := p.Child("hints")
			if len(h.ForZones) > maxEndpointHintEntries {
				errs = append(errs, field.TooMany(hp.Child("forZones"), len(h.ForZones), maxEndpointHintEntries))
			}
			if len(h.ForNodes) > maxEndpointHintEntries {
				errs = append(errs, field.TooMany(hp.Child("forNodes"), len(h.ForNodes), maxEndpointHintEntries))
			}
			for k, z := range h.ForZones {
				for _, msg := range validation.IsValidLabelValue(z.Name) {
					errs = append(errs, field.Invalid(hp.Child("forZones").Index(k).Child("name"), z.Name, msg))
				}
			}
			for k, n := range h.ForNodes {
				errs = append(errs, validateName(n.Name, nameIsDNSSubdomain, hp.Child("forNodes").Index(k).Child("name"))...)
			}
		}
	}
	return errs
}

func validateSlicePorts(ports []discoveryv1.EndpointPort, fld *field.Path) field.ErrorList {
	if len(ports) > maxSlicePorts {
		return field.ErrorList{field.TooMany(fld, len(ports), maxSlicePorts)}
	}
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		p := fld.Index(i)
		name := ""
		if port.Name != nil {
			name = *port.Name
		}
		if name != "" {
			errs = append(errs, validateDNS1123Label(name, p.Child("name"))...)
		}
		// Ports are matched to Service ports by name, so names are unique
		// (the empty name included).
		if names[name] {
			errs = append(errs, field.Duplicate(p.Child("name"), name))
		}
		names[name] = true
		if port.Protocol == nil {
			errs = append(errs, field.Required(p.Child("protocol"), ""))
		} else {
			errs = append(errs, validateProtocol(*port.Protocol, p.Child("protocol"))...)
		}
		if port.Port != nil {
			for _, msg := range validation.IsValidPortNum(int(*port.Port)) {
				errs = append(errs, field.Invalid(p.Child("port"), *port.Port, msg))
			}
		}
		if port.AppProtocol != nil {
			errs = append(errs, validateQualifiedName(*port.AppProtocol, p.Child("appProtocol"))...)
		}
	}
	return errs
}
