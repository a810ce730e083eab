from reward.cli import main

main()
