package monitor

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/alert"
)

func (s *Service) alerts() (AlertEngine, error) {
	if s.o.Alerts == nil {
		return nil, errdefs.NotImplemented("This server runs no alert engine")
	}
	return s.o.Alerts, nil
}

// PutReceiver creates or replaces the receiver of a document. Masked
// values ("***") keep the stored ones. It reports whether the receiver
// was created and whether it changed.
func (s *Service) PutReceiver(ctx context.Context, d *AlertReceiver) (*AlertReceiver, bool, bool, error) {
	e, err := s.alerts()
	if err != nil {
		return nil, false, false, err
	}
	rc := d.Receiver()
	old, err := e.GetReceiver(ctx, rc.Name)
	created := errors.Is(err, errdefs.ErrNotFound)
	if err != nil && !created {
		return nil, false, false, err
	}
	if !created {
		Unmask(&rc, old)
		if sameReceiver(old, rc) {
			return ReceiverDocument(old), false, false, nil
		}
	} else if rc.Secret == Masked {
		return nil, false, false, invalid("alert receiver", FieldErrors{{Path: "spec.secret", Msg: "is the mask " + Masked + "; give the secret"}})
	}
	stored, err := e.PutReceiver(ctx, rc)
	if err != nil {
		return nil, false, false, err
	}
	return ReceiverDocument(stored), created, true, nil
}

func sameReceiver(a, b alert.Receiver) bool {
	strip := func(r alert.Receiver) []byte {
		r.Generation, r.CreationTime, r.LastUpdateTime = 0, b.CreationTime, b.LastUpdateTime
		j, _ := json.Marshal(r)
		return j
	}
	return string(strip(a)) == string(strip(b))
}

// GetReceiver returns a receiver's document, masked.
func (s *Service) GetReceiver(ctx context.Context, name string) (*AlertReceiver, error) {
	e, err := s.alerts()
	if err != nil {
		return nil, err
	}
	rc, err := e.GetReceiver(ctx, name)
	if err != nil {
		return nil, err
	}
	return ReceiverDocument(rc), nil
}

// ListReceivers returns every receiver's document, masked, by name.
func (s *Service) ListReceivers(ctx context.Context) ([]*AlertReceiver, error) {
	e, err := s.alerts()
	if err != nil {
		return nil, err
	}
	rcs, err := e.ListReceivers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*AlertReceiver, len(rcs))
	for i, rc := range rcs {
		out[i] = ReceiverDocument(rc)
	}
	return out, nil
}

// DeleteReceiver removes a receiver.
func (s *Service) DeleteReceiver(ctx context.Context, name string) error {
	e, err := s.alerts()
	if err != nil {
		return err
	}
	return e.DeleteReceiver(ctx, name)
}

// ActiveAlerts returns the pending and firing alerts of a monitor ("" =
// of all).
func (s *Service) ActiveAlerts(ctx context.Context, monitor string) ([]alert.State, error) {
	e, err := s.alerts()
	if err != nil {
		return nil, err
	}
	return e.Active(ctx, monitor)
}

// AlertHistory returns alert events, newest first.
func (s *Service) AlertHistory(ctx context.Context, q alert.HistoryQuery) ([]alert.Event, error) {
	e, err := s.alerts()
	if err != nil {
		return nil, err
	}
	return e.History(ctx, q)
}
