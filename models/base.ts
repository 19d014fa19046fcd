import { Model, snakeCaseMappers } from 'objection';

/**
 * Base for every model: camelCase properties over snake_case columns. The mapping applies to
 * rows read and written through models; column names inside `where(...)` and raw SQL stay
 * snake_case (the table's real names).
 */
export class BaseModel extends Model {
  static get columnNameMappers() {
    return snakeCaseMappers();
  }
}
