package monitor

import (
	"fmt"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/alert"
)

// Masked stands for a secret in documents that the API returns. A
// document that is put back with it keeps the stored secret, so that
// `kiln get alertreceiver x -o yaml | kiln apply -f -` changes nothing.
const Masked = "***"

// AlertReceiver is an alert receiver document:
//
//	apiVersion: kiln.dev/v1
//	kind: AlertReceiver
//	metadata: {name: oncall}
//	spec: {type: webhook, url: "https://hooks.example.com/kiln", secret: s3cr3t}
type AlertReceiver struct {
	APIVersion string       `json:"apiVersion" yaml:"apiVersion"`
	Kind       string       `json:"kind" yaml:"kind"`
	Metadata   Metadata     `json:"metadata" yaml:"metadata"`
	Spec       ReceiverSpec `json:"spec" yaml:"spec"`
}

// ReceiverSpec is an alert.Receiver without its name.
type ReceiverSpec struct {
	// Type is webhook (signed JSON), slack or alertmanager.
	Type string `json:"type" yaml:"type"`
	URL  string `json:"url" yaml:"url"`
	// Secret signs webhook bodies (X-Kiln-Signature); returned as "***".
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
	// Headers are added to every request; their values are returned as
	// "***".
	Headers      map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	SendResolved *bool             `json:"send_resolved,omitempty" yaml:"send_resolved,omitempty"`
	Timeout      alert.Duration    `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	MaxAttempts  int               `json:"max_attempts,omitempty" yaml:"max_attempts,omitempty"`
}

// ParseAlertReceiver reads an AlertReceiver from YAML or JSON and
// validates it (name: as in ParseMonitor).
func ParseAlertReceiver(data []byte, name string) (*AlertReceiver, error) {
	var r AlertReceiver
	if err := decodeDoc(data, "alert receiver", &r); err != nil {
		return nil, err
	}
	if name != "" {
		switch r.Metadata.Name {
		case "":
			r.Metadata.Name = name
		case name:
		default:
			return nil, invalid("alert receiver", FieldErrors{{Path: "metadata.name", Msg: fmt.Sprintf("is %q, but the URL names receiver %q", clip(r.Metadata.Name), clip(name))}})
		}
	}
	if r.APIVersion == "" {
		r.APIVersion = APIVersion
	}
	if r.Kind == "" {
		r.Kind = KindAlertReceiver
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the document.
func (r *AlertReceiver) Validate() error {
	v := &validator{}
	if r.APIVersion != APIVersion {
		v.fail("apiVersion", "must be %q, not %q", APIVersion, clip(r.APIVersion))
	}
	if r.Kind != KindAlertReceiver {
		v.fail("kind", "must be %q, not %q", KindAlertReceiver, clip(r.Kind))
	}
	if err := ValidateName(r.Metadata.Name); err != nil {
		v.fail("metadata.name", "%s", errdefs.Message(err))
	}
	v.metadata(&r.Metadata)
	if len(v.errs) == 0 {
		rc := r.Receiver()
		if err := rc.Validate(); err != nil {
			v.fail("spec", "%s", errdefs.Message(err))
		}
	}
	if len(v.errs) > 0 {
		return invalid("alert receiver", v.errs)
	}
	return nil
}

// Receiver returns the alert.Receiver the document describes.
func (r *AlertReceiver) Receiver() alert.Receiver {
	s := r.Spec
	return alert.Receiver{Name: r.Metadata.Name, Type: s.Type, URL: s.URL, Secret: s.Secret, Headers: s.Headers,
		SendResolved: s.SendResolved, Timeout: s.Timeout, MaxAttempts: s.MaxAttempts}
}

// ReceiverDocument returns the document of a stored receiver, its secret
// and header values masked.
func ReceiverDocument(rc alert.Receiver) *AlertReceiver {
	d := &AlertReceiver{APIVersion: APIVersion, Kind: KindAlertReceiver, Metadata: Metadata{Name: rc.Name},
		Spec: ReceiverSpec{Type: rc.Type, URL: rc.URL, SendResolved: rc.SendResolved, Timeout: rc.Timeout, MaxAttempts: rc.MaxAttempts}}
	if rc.Secret != "" {
		d.Spec.Secret = Masked
	}
	if len(rc.Headers) > 0 {
		d.Spec.Headers = make(map[string]string, len(rc.Headers))
		for k := range rc.Headers {
			d.Spec.Headers[k] = Masked
		}
	}
	return d
}

// Unmask replaces masked values of rc (a receiver being put) by those of
// the stored receiver old.
func Unmask(rc *alert.Receiver, old alert.Receiver) {
	if rc.Secret == Masked {
		rc.Secret = old.Secret
	}
	for k, v := range rc.Headers {
		if v == Masked {
			if ov, ok := old.Headers[k]; ok {
				rc.Headers[k] = ov
			}
		}
	}
}
