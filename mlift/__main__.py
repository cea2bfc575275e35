from mlift.cli import main

raise SystemExit(main())
