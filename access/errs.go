package access

import (
	"errors"
	"fmt"

	"github.com/kiln-ml/kiln/errdefs"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func errorsIsNotFound(err error) bool { return errors.Is(err, errdefs.ErrNotFound) }

func permissionDenied(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrPermission, Msg: fmt.Sprintf(format, args...)}
}

func isUnauthenticated(err error) bool { return errors.Is(err, errdefs.ErrUnauthenticated) }
