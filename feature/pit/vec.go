package pit

// chunkBits sets the chunk size of vec: 64Ki values.
const chunkBits = 16

// vec is an append-only vector in fixed-size chunks: growing it never
// copies what it holds (a plain slice of 10M values copies several times
// its size while growing by 1.25×).
type vec[T any] struct {
	chunks [][]T
	n      int
}

func (v *vec[T]) push(x T) {
	c := len(v.chunks)
	if c == 0 || len(v.chunks[c-1]) == 1<<chunkBits {
		v.chunks = append(v.chunks, make([]T, 0, 1<<chunkBits))
		c++
	}
	v.chunks[c-1] = append(v.chunks[c-1], x)
	v.n++
}

func (v *vec[T]) at(i int32) T { return v.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// each calls fn with every index and value, in order.
func (v *vec[T]) each(fn func(i int32, x T)) {
	i := int32(0)
	for _, c := range v.chunks {
		for _, x := range c {
			fn(i, x)
			i++
		}
	}
}
