"""The judge: a graph network that reads decoded graphs and predicts their properties, to choose among candidates."""
