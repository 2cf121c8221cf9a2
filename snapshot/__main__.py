from snapshot.cli import main

main()
