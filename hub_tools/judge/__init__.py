"""Stage 3, the judge: principle ratings with the paper's Rating Prompt, validated and cached."""
