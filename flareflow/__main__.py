from flareflow.cli import main

main()
