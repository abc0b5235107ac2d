package server

// CSVCell is csvCell, for the tests of package server_test.
var CSVCell = csvCell
