"""The tick's stages, in the order the engine runs them: settling and launching actions
(`actions`), watching datasets (`datasets`), watching production (`production`), judging and
promoting model versions (`models`). Each is the same code for every automation."""
