// Package score runs a model over a table file, batch by batch: the
// engine behind `kiln score` and the server's score jobs, and the way
// promotion gates compute a model's predictions on a dataset.
//
// Inputs turns a table batch into a model's input tensors the way MLflow's
// /invocations turns a dataframe into them (serving/frame.go): one tensor
// per column for a model whose inputs are named after columns, else the
// feature columns packed into one [rows, n] tensor. Each streams a
// table.Reader through a model on several goroutines and hands the
// predictions back in input order, with memory bounded by the batches in
// flight. Output turns prediction tensors into table columns, ready for a
// table.Writer.
package score
