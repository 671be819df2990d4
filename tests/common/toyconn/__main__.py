"""Run the toy connector: python -m toyconn ARGS."""

from toyconn import main

main()
