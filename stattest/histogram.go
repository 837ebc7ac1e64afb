package stattest

// Histogram returns the weight of the sample in each bin of edges (which
// must be increasing): bin i holds [edges[i], edges[i+1]), the last bin also
// its right edge, as np.histogram counts; values outside the edges are not
// counted. Drift reports draw it on display bins.
func (s *Sample) Histogram(edges []float64) []float64 {
	if len(edges) < 2 {
		return nil
	}
	return histogram(s, edges)
}
