package main

func main() { _ = newRegistry() }
