package runtime

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

func readSourceFile(s Source, name string) ([]byte, error) {
	if s.FS != nil {
		p := s.Path
		if name != "" {
			p = path.Join(p, name)
		}
		return fs.ReadFile(s.FS, p)
	}
	p := s.Path
	if name != "" {
		p = filepath.Join(p, name)
	}
	return os.ReadFile(p)
}
